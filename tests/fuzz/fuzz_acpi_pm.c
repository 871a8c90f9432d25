/* libFuzzer target for the ACPI PM1a register block, the one ACPI piece a guest drives.
 * The input is a sequence of 6-byte port accesses: byte 0 bit 0 write, bits 1-2 size
 * (1, 2, 4 or the invalid 3), byte 1 the offset from the block's base (0-255, so accesses
 * past the block too), bytes 2-5 the data. Checked after every access: no crash or
 * out-of-bounds access (ASan), refusals exactly for bad sizes and ranges (reads then all
 * ones), SCI_EN always reads 1 and SLP_EN 0, only defined enable bits stick, status bits
 * never appear by themselves, a poweroff is reported only while PM1_CNT.SLP_TYP is S5 and a
 * reset only for a write of the reset value to the reset register. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"

static int poweroffs, resets;

static void on_event(void *ctx, enum acpi_pm_event ev)
{
	(void)ctx;
	if (ev == ACPI_PM_POWEROFF)
		poweroffs++;
	else
		resets++;
}

static uint16_t rd16(struct acpi_pm *pm, unsigned int off)
{
	uint8_t d[2] = { 0xaa, 0xaa };

	if (acpi_pm_io(pm, off, d, 2, false))
		abort();
	return (uint16_t)(d[0] | d[1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned int sizes[4] = { 1, 2, 4, 3 };
	struct acpi_pm pm;

	poweroffs = resets = 0;
	acpi_pm_init(&pm, on_event, NULL);
	for (size_t i = 0; i + 6 <= size; i += 6) {
		bool wr = data[i] & 1;
		unsigned int sz = sizes[(data[i] >> 1) & 3], off = data[i + 1];
		uint8_t buf[4];
		int p = poweroffs, r = resets, ret;
		bool valid = sz != 3 && off + sz <= ACPI_PM_IO_LEN;

		memcpy(buf, data + i + 2, 4);
		ret = acpi_pm_io(&pm, off, buf, sz, wr);
		if ((ret == 0) != valid)
			abort();
		if (!valid && !wr)
			for (unsigned int k = 0; k < sz; k++)
				if (buf[k] != 0xff)
					abort();
		uint16_t cnt = rd16(&pm, ACPI_PM_CNT_OFF);

		if (!(cnt & 1) || (cnt & 0x2000) || (rd16(&pm, 2) & ~0x0721) || rd16(&pm, 0))
			abort();
		if (poweroffs != p && (!wr || ((cnt >> 10) & 7) != ACPI_SLP_TYP_S5))
			abort();
		if (resets != r && (!wr || off > ACPI_PM_RESET_OFF || off + sz <= ACPI_PM_RESET_OFF ||
				    buf[ACPI_PM_RESET_OFF - off] != ACPI_RESET_VALUE))
			abort();
	}
	acpi_pm_destroy(&pm);
	return 0;
}
