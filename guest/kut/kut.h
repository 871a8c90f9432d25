/* The tiny library of vireo's test kernels (kvm-unit-tests style): port I/O, CPUID/MSR/CR
 * access, serial output on COM1 (0x3f8), printf-lite, exit through isa-debug-exit (0xf4), fw_cfg
 * reads (0x510/0x511), the local APIC in xAPIC or x2APIC mode, and AP bring-up with
 * INIT/SIPI. Freestanding: no libc, built with gcc and clang. */
#ifndef KUT_H
#define KUT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KUT_MAX_CPUS 1024

/* ---- the multiboot information structure (what the VMM hands us in EBX) ---- */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower;
	uint32_t mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
} __attribute__((packed));

struct mb_module {
	uint32_t mod_start;
	uint32_t mod_end;
	uint32_t string;
	uint32_t reserved;
} __attribute__((packed));

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry */
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_IF_MEM     (1u << 0)
#define MB_IF_CMDLINE (1u << 2)
#define MB_IF_MODS    (1u << 3)
#define MB_IF_MMAP    (1u << 6)

extern uint32_t kut_mb_magic, kut_mb_info;
static inline struct mb_info *mbi(void)
{
	return (struct mb_info *)(uintptr_t)kut_mb_info;
}

/* Each test kernel provides main(); its return value goes to exit(). */
int main(void);
/* Application processors run this after their switch to long mode (index: start order). */
void ap_main(unsigned index);

/* ---- port I/O and CPU access ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

struct cpuid { uint32_t a, b, c, d; };
static inline struct cpuid cpuid(uint32_t leaf, uint32_t sub)
{
	struct cpuid r;

	__asm__ volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d) : "a"(leaf), "c"(sub));
	return r;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline uint64_t read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" :: "r"(v) : "memory"); }

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
__attribute__((noreturn)) static inline void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* External interrupts: vector gets kut_irq_stub, which counts into kut_irq_count (and
 * kut_irq_count_cpu[APIC ID % KUT_IRQ_CPUS]) and sends the LAPIC an EOI. */
#define KUT_IRQ_CPUS 256
void set_irq_vector(unsigned vector);
/* The boot CPU's IDT (exceptions and set_irq_vector gates) on this CPU: APs that take
 * interrupts call it first. */
void idt_load(void);
extern volatile unsigned kut_irq_count;
extern volatile unsigned kut_irq_count_cpu[KUT_IRQ_CPUS];
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }

/* Writes v to CR4; returns false when the write raised #GP (the fault is caught). */
bool write_cr4_checked(uint64_t v);

/* ---- output and exit ---- */
int putchar(int c);
int puts(const char *s);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
/* Writes code to isa-debug-exit: the VMM exits with status (code << 1) | 1. */
void exit(int code) __attribute__((noreturn));

/* report(): one "PASS: what" / "FAIL: what" line; kut_failures() counts the FAILs. */
void report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void report_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned kut_failures(void);

/* ---- string helpers (the compiler may also call memset/memcpy) ---- */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* ---- the command line ---- */
const char *cmdline(void);
/* Value of "key=NUM" (decimal or 0x hex) on the command line, or def. */
long cmdline_num(const char *key, long def);
bool cmdline_has(const char *word);

/* ---- fw_cfg ---- */
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID        0x01
#define FW_CFG_RAM_SIZE  0x03
#define FW_CFG_NB_CPUS   0x05
#define FW_CFG_MAX_CPUS  0x0f
void fwcfg_read(uint16_t key, void *buf, unsigned len);
uint64_t fwcfg_read_le(uint16_t key, unsigned len);

/* ---- ACPI tables, as a guest OS finds them ---- */
struct rsdp {
	char sig[8];
	uint8_t csum;
	char oem[6];
	uint8_t rev;
	uint32_t rsdt;
	uint32_t len;
	uint64_t xsdt;
	uint8_t xcsum;
	uint8_t res[3];
} __attribute__((packed));

struct sdt {
	char sig[4];
	uint32_t len;
	uint8_t rev, csum;
	char oem[6], oem_table[8];
	uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

uint8_t acpi_checksum(const void *p, size_t n); /* byte sum: 0 for a valid table */
const struct rsdp *acpi_find_rsdp(void);        /* in 0xe0000-0xfffff, v1 checksum right */

/* ---- local APIC ---- */
#define APIC_DEFAULT_BASE 0xfee00000u
#define MSR_APIC_BASE     0x1b
#define APIC_BASE_EXTD    (1u << 10)
#define APIC_BASE_EN      (1u << 11)
#define APIC_ICR_INIT     0x00000500u
#define APIC_ICR_STARTUP  0x00000600u
#define APIC_ICR_ASSERT   0x00004000u
#define APIC_ICR_ALL_BUT_SELF 0x000c0000u
bool apic_x2apic_supported(void);
/* Enables the LAPIC (software enable in SVR); x2apic selects x2APIC mode. */
void apic_enable(bool x2apic);
bool apic_is_x2apic(void);
uint32_t apic_id(void);            /* of the calling CPU, from its LAPIC */
uint32_t apic_read(unsigned reg);   /* xAPIC register offset (0x20, 0x320, ...) */
void apic_write(unsigned reg, uint32_t v);
uint32_t cpu_initial_apic_id(void); /* from CPUID (works before the LAPIC is touched) */
void apic_write_icr(uint32_t dest, uint32_t low);

/* Starts every AP (broadcast INIT, SIPI, SIPI) at the trampoline copied to
 * KUT_TRAMPOLINE_ADDR; each AP runs ap_main(). */
#define KUT_TRAMPOLINE_ADDR 0x8000u
void smp_start_aps(void);

#endif
