/* CMOS RTC (MC146818) at ports 0x70 (index) and 0x71 (data). Linux reads the wall clock
 * from it at boot; the time registers return the host's current UTC time in BCD, 24-hour
 * mode, never "update in progress". The other 128 bytes are plain CMOS storage. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/vm.h"
#include "devices/legacy/legacy.h"

#define RTC_PORT     0x70
#define RTC_SECONDS  0x00
#define RTC_MINUTES  0x02
#define RTC_HOURS    0x04
#define RTC_WEEKDAY  0x06
#define RTC_DAY      0x07
#define RTC_MONTH    0x08
#define RTC_YEAR     0x09
#define RTC_REG_A    0x0a
#define RTC_REG_B    0x0b
#define RTC_REG_C    0x0c
#define RTC_REG_D    0x0d
#define RTC_CENTURY  0x32

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
};

static struct rtc rtc_dev;

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t rtc_read_reg(struct rtc *r, uint8_t idx)
{
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	switch (idx) {
	case RTC_SECONDS: return bcd(tm.tm_sec);
	case RTC_MINUTES: return bcd(tm.tm_min);
	case RTC_HOURS:   return bcd(tm.tm_hour);
	case RTC_WEEKDAY: return bcd(tm.tm_wday + 1);
	case RTC_DAY:     return bcd(tm.tm_mday);
	case RTC_MONTH:   return bcd(tm.tm_mon + 1);
	case RTC_YEAR:    return bcd(tm.tm_year % 100);
	case RTC_CENTURY: return bcd((tm.tm_year + 1900) / 100);
	case RTC_REG_A:   return 0x26;   /* 32.768 kHz, 1024 Hz; UIP clear */
	case RTC_REG_B:   return 0x02;   /* 24-hour, BCD, no interrupts */
	case RTC_REG_C:   return 0x00;
	case RTC_REG_D:   return 0x80;   /* valid RAM and time */
	default:          return r->cmos[idx];
	}
}

static int rtc_io(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write)
{
	struct rtc *r = opaque;
	uint8_t *b = data;

	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		if (is_write)
			r->index = *b & 0x7f;   /* bit 7 is the NMI mask */
		else
			*b = 0xff;
	} else if (is_write) {
		if (r->index > RTC_REG_D)    /* the clock itself is read-only */
			r->cmos[r->index] = *b;
	} else {
		*b = rtc_read_reg(r, r->index);
	}
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int rtc_init(struct vm *vm)
{
	memset(&rtc_dev, 0, sizeof(rtc_dev));
	pthread_mutex_init(&rtc_dev.lock, NULL);
	return bus_register(&vm->pio, RTC_PORT, 2, rtc_io, &rtc_dev, "rtc");
}
