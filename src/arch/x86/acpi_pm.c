/* The ACPI PM1a register block that the FADT describes (ACPI 6.4 4.8.3): PM1a_STS and
 * PM1a_EN (event block, 2 + 2 bytes) and PM1a_CNT (control, 2 bytes), plus vireo's one-byte
 * FADT reset register. Writing SLP_TYP = S5 with SLP_EN set is the guest's poweroff; it is
 * reported to the VMM through the on_event callback (vireo then exits 0). */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <string.h>

#define PM1_STS_MASK	0x8731	/* TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK */
#define PM1_EN_MASK	0x0721	/* TMR, GBL, PWRBTN, SLPBTN, RTC */
#define PM1_CNT_SCI_EN	0x0001
#define PM1_CNT_MASK	0x1c07	/* SCI_EN, BM_RLD, GBL_RLS, SLP_TYP */
#define PM1_CNT_SLP_EN	0x2000
#define PM1_SLP_TYP(c)	(((c) >> 10) & 7)

void acpi_pm_init(struct acpi_pm *pm, void (*on_event)(void *ctx, enum acpi_pm_event ev),
		  void *ctx)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	pm->cnt = PM1_CNT_SCI_EN; /* no SMI_CMD: the platform is always in ACPI mode */
	pm->on_event = on_event;
	pm->ctx = ctx;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}

/* Byte i of the register file as the guest reads it. */
static uint8_t pm_read_byte(const struct acpi_pm *pm, unsigned int i)
{
	uint16_t cnt = pm->cnt & ~PM1_CNT_SLP_EN; /* SLP_EN and GBL_RLS read as 0 */

	switch (i) {
	case ACPI_PM_EVT_OFF: return (uint8_t)pm->sts;
	case ACPI_PM_EVT_OFF + 1: return (uint8_t)(pm->sts >> 8);
	case ACPI_PM_EVT_OFF + 2: return (uint8_t)pm->en;
	case ACPI_PM_EVT_OFF + 3: return (uint8_t)(pm->en >> 8);
	case ACPI_PM_CNT_OFF: return (uint8_t)(cnt & ~0x4);
	case ACPI_PM_CNT_OFF + 1: return (uint8_t)(cnt >> 8);
	default: return 0;
	}
}

/* Merge the bytes of a write that fall into the 16-bit register at reg_off. */
static bool pm_merge16(uint16_t *reg, unsigned int reg_off, uint64_t off, const uint8_t *d,
		       unsigned int size, uint16_t *val, uint16_t *touched)
{
	bool hit = false;

	*val = *reg;
	*touched = 0;
	for (unsigned int i = 0; i < size; i++) {
		uint64_t b = off + i;

		if (b < reg_off || b >= reg_off + 2)
			continue;
		unsigned int sh = (unsigned int)(b - reg_off) * 8;

		*val = (uint16_t)((*val & ~(0xffu << sh)) | ((unsigned int)d[i] << sh));
		*touched |= (uint16_t)(0xffu << sh);
		hit = true;
	}
	return hit;
}

/* Returns the event a write causes, or -1. */
static int pm_write(struct acpi_pm *pm, uint64_t off, const uint8_t *d, unsigned int size)
{
	uint16_t v, t;
	int ev = -1;

	if (pm_merge16(&pm->sts, ACPI_PM_EVT_OFF, off, d, size, &v, &t))
		pm->sts &= (uint16_t)~(v & t & PM1_STS_MASK); /* write 1 to clear */
	if (pm_merge16(&pm->en, ACPI_PM_EVT_OFF + 2, off, d, size, &v, &t))
		pm->en = v & PM1_EN_MASK;
	if (pm_merge16(&pm->cnt, ACPI_PM_CNT_OFF, off, d, size, &v, &t)) {
		pm->cnt = (uint16_t)((v & PM1_CNT_MASK & ~0x4) | PM1_CNT_SCI_EN);
		if ((v & PM1_CNT_SLP_EN) && PM1_SLP_TYP(v) == ACPI_SLP_TYP_S5)
			ev = ACPI_PM_POWEROFF;
	}
	if (off <= ACPI_PM_RESET_OFF && off + size > ACPI_PM_RESET_OFF &&
	    d[ACPI_PM_RESET_OFF - off] == ACPI_RESET_VALUE)
		ev = ACPI_PM_RESET;
	return ev;
}

int acpi_pm_io(void *opaque, uint64_t offset, void *data, unsigned int size, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint8_t *d = data;
	int ev = -1;

	if ((size != 1 && size != 2 && size != 4) || offset >= ACPI_PM_IO_LEN ||
	    size > ACPI_PM_IO_LEN - offset) {
		if (!is_write)
			memset(data, 0xff, size <= 8 ? size : 8);
		return -EINVAL;
	}
	pthread_mutex_lock(&pm->lock);
	if (is_write)
		ev = pm_write(pm, offset, d, size);
	else
		for (unsigned int i = 0; i < size; i++)
			d[i] = pm_read_byte(pm, (unsigned int)offset + i);
	pthread_mutex_unlock(&pm->lock);
	/* Outside the lock: the callback may stop vCPUs or take VM-wide locks. */
	if (ev >= 0 && pm->on_event)
		pm->on_event(pm->ctx, (enum acpi_pm_event)ev);
	return 0;
}
