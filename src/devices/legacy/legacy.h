/* Legacy PC devices every x86 VM gets (src/core/devices.c lists them). */
#ifndef VIREO_DEVICES_LEGACY_LEGACY_H
#define VIREO_DEVICES_LEGACY_LEGACY_H

struct vm;

/* 8250 UART at 0x3f8, IRQ 4; console per vm->cfg.console (stdio, a file, none). */
int serial_init(struct vm *vm);
void serial_exit(struct vm *vm);
/* CMOS RTC at 0x70/0x71 with the host's current time (BCD, 24 h). */
int rtc_init(struct vm *vm);
/* i8042 at 0x60/0x64: only the 0xfe (pulse reset) command, which reboots. */
int i8042_init(struct vm *vm);

#endif
