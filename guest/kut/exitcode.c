/* kut exitcode: writes code=N from the command line to isa-debug-exit with width=1|2|4 bytes;
 * vireo must exit with status (N << 1) | 1 right there. */
#include "kut.h"

int main(void)
{
	long code = cmdline_num("code", 0), width = cmdline_num("width", 4);

	printf("kut exitcode: writing %ld to port 0xf4 (%ld bytes)\n", code, width);
	if (width == 1)
		outb(0xf4, (uint8_t)code);
	else if (width == 2)
		outw(0xf4, (uint16_t)code);
	else
		outl(0xf4, (uint32_t)code);
	puts("FAIL: kut exitcode: still running after the write to 0xf4");
	halt_forever();
}
