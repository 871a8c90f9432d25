/* The test kernels' library: see kut.h. */
#include "kut.h"

#define COM1        0x3f8
#define COM1_LSR    (COM1 + 5)
#define LSR_THRE    0x20
#define DEBUG_EXIT  0xf4
#define FW_CFG_SEL  0x510
#define FW_CFG_DATA 0x511

/* ---- strings ---- */
void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

/* ---- serial output ---- */
int putchar(int c)
{
	/* Bounded wait for the transmitter: a VMM without a UART must not hang us. */
	for (unsigned i = 0; i < 100000 && !(inb(COM1_LSR) & LSR_THRE); i++)
		cpu_relax();
	outb(COM1, (uint8_t)c);
	return c;
}

int puts(const char *s)
{
	while (*s)
		putchar(*s++);
	putchar('\n');
	return 0;
}

static void put_unsigned(uint64_t v, unsigned base, int width, char pad)
{
	char buf[24];
	int n = 0;

	do {
		unsigned d = (unsigned)(v % base);
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	while (width-- > n)
		putchar(pad);
	while (n)
		putchar(buf[--n]);
}

/* %s %c %d %i %u %x %p %%, with l/ll/z length and a 0-padded or blank-padded width. */
int vprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putchar(*fmt);
			continue;
		}
		char pad = ' ';
		int width = 0, lng = 0;
		if (*++fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z')
			lng++, fmt++;
		switch (*fmt) {
		case 'd': case 'i': {
			int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
			uint64_t u = (uint64_t)v;
			if (v < 0) {
				putchar('-');
				u = 0 - u;
				width--;
			}
			put_unsigned(u, 10, width, pad);
			break;
		}
		case 'u':
			put_unsigned(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, width, pad);
			break;
		case 'x':
			put_unsigned(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, width, pad);
			break;
		case 'p':
			putchar('0'), putchar('x');
			put_unsigned((uintptr_t)va_arg(ap, void *), 16, width, pad);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			while (*s)
				putchar(*s++);
			break;
		}
		case 'c':
			putchar(va_arg(ap, int));
			break;
		case '%':
			putchar('%');
			break;
		default:
			putchar('%');
			if (!*fmt)
				return 0;
			putchar(*fmt);
		}
	}
	return 0;
}

int printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	return 0;
}

void exit(int code)
{
	outl(DEBUG_EXIT, (uint32_t)code);
	/* No isa-debug-exit: say so and stop. */
	puts("kut: isa-debug-exit did not stop the VM");
	halt_forever();
}

static unsigned failures;

static void report_va(const char *tag, const char *fmt, va_list ap)
{
	printf("%s: ", tag);
	vprintf(fmt, ap);
	putchar('\n');
}

void report(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_va(ok ? "PASS" : "FAIL", fmt, ap);
	va_end(ap);
	if (!ok)
		failures++;
}

void report_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_va("SKIP", fmt, ap);
	va_end(ap);
}

unsigned kut_failures(void)
{
	return failures;
}

/* ---- command line ---- */
const char *cmdline(void)
{
	if (!(mbi()->flags & MB_IF_CMDLINE))
		return "";
	return (const char *)(uintptr_t)mbi()->cmdline;
}

/* Finds word as a whole blank-separated token prefix (key= or a flag). */
static const char *find_token(const char *word, bool with_value)
{
	size_t n = strlen(word);

	for (const char *p = cmdline(); *p;) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, word, n) && (with_value ? p[n] == '=' : (p[n] == ' ' || !p[n])))
			return p + n;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

bool cmdline_has(const char *word)
{
	return find_token(word, false) != NULL;
}

long cmdline_num(const char *key, long def)
{
	const char *p = find_token(key, true);
	unsigned base = 10;
	long v = 0;

	if (!p)
		return def;
	p++;
	if (p[0] == '0' && p[1] == 'x')
		base = 16, p += 2;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else
			break;
		v = v * (long)base + (long)d;
	}
	return v;
}

/* ---- fw_cfg ---- */
void fwcfg_read(uint16_t key, void *buf, unsigned len)
{
	uint8_t *p = buf;

	outw(FW_CFG_SEL, key);
	for (unsigned i = 0; i < len; i++)
		p[i] = inb(FW_CFG_DATA);
}

uint64_t fwcfg_read_le(uint16_t key, unsigned len)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;

	fwcfg_read(key, b, len > 8 ? 8 : len);
	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/* ---- ACPI tables ---- */
uint8_t acpi_checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *b++);
	return s;
}

const struct rsdp *acpi_find_rsdp(void)
{
	for (uintptr_t a = 0xe0000; a < 0x100000; a += 16) {
		const struct rsdp *r = (const struct rsdp *)a;

		if (!memcmp(r->sig, "RSD PTR ", 8) && !acpi_checksum(r, 20))
			return r;
	}
	return NULL;
}

/* ---- exceptions ---- */
struct exc_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

extern const uint64_t kut_exc_stubs[32];
static struct idt_entry idt[256] __attribute__((aligned(16)));

/* Where write_cr4_checked resumes after a #GP, and whether one happened. */
static volatile uint64_t gp_resume;
static volatile bool gp_caught;

void kut_exception(struct exc_frame *f);
void kut_exception(struct exc_frame *f)
{
	if (f->vector == 13 && gp_resume) {
		f->rip = gp_resume;
		gp_resume = 0;
		gp_caught = true;
		return;
	}
	printf("kut: unexpected exception %lu (error 0x%lx) at rip 0x%lx\n", (unsigned long)f->vector,
	       (unsigned long)f->error, (unsigned long)f->rip);
	exit(0x7f);
}

static void set_gate(unsigned vector, uint64_t a)
{
	idt[vector] = (struct idt_entry){ .off_lo = (uint16_t)a, .sel = 0x08, .type = 0x8e,
					  .off_mid = (uint16_t)(a >> 16),
					  .off_hi = (uint32_t)(a >> 32) };
}

extern const char kut_irq_stub[];
volatile unsigned kut_irq_count;
volatile unsigned kut_irq_count_cpu[KUT_IRQ_CPUS];

void set_irq_vector(unsigned vector)
{
	if (vector >= 32 && vector < 256)
		set_gate(vector, (uintptr_t)kut_irq_stub);
}

void kut_irq(void);
void kut_irq(void)
{
	__atomic_fetch_add(&kut_irq_count, 1, __ATOMIC_SEQ_CST); /* CPUs may take them at once */
	__atomic_fetch_add(&kut_irq_count_cpu[apic_id() % KUT_IRQ_CPUS], 1, __ATOMIC_SEQ_CST);
	apic_write(0xb0, 0); /* EOI */
}

void idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) desc = { sizeof(idt) - 1, (uintptr_t)idt };

	__asm__ volatile("lidt %0" :: "m"(desc));
}

static void setup_idt(void)
{
	for (unsigned i = 0; i < 32; i++)
		set_gate(i, kut_exc_stubs[i]);
	idt_load();
}

bool write_cr4_checked(uint64_t v)
{
	gp_caught = false;
	__asm__ volatile("leaq 1f(%%rip), %%rcx\n\t"
			 "movq %%rcx, %0\n\t"
			 "mov %1, %%cr4\n"
			 "1:"
			 : "=m"(gp_resume) : "r"(v) : "rcx", "memory");
	gp_resume = 0;
	return !gp_caught;
}

/* ---- local APIC ---- */
static bool x2apic_mode;

static inline volatile uint32_t *apic_reg(unsigned off)
{
	return (volatile uint32_t *)(uintptr_t)(APIC_DEFAULT_BASE + off);
}

bool apic_x2apic_supported(void)
{
	return cpuid(1, 0).c & (1u << 21);
}

void apic_enable(bool x2apic)
{
	uint64_t base = rdmsr(MSR_APIC_BASE) | APIC_BASE_EN;

	if (x2apic)
		base |= APIC_BASE_EXTD;
	wrmsr(MSR_APIC_BASE, base);
	x2apic_mode = x2apic;
	if (x2apic)
		wrmsr(0x80f, rdmsr(0x80f) | 0x1ff);     /* SVR: software enable, spurious 0xff */
	else
		*apic_reg(0xf0) |= 0x1ff;
}

bool apic_is_x2apic(void)
{
	return x2apic_mode;
}

/* x2APIC MSRs are 0x800 + offset / 16 (the ICR is one 64-bit MSR: apic_write_icr). */
uint32_t apic_read(unsigned reg)
{
	if (x2apic_mode)
		return (uint32_t)rdmsr(0x800 + reg / 16);
	return *apic_reg(reg);
}

void apic_write(unsigned reg, uint32_t v)
{
	if (x2apic_mode)
		wrmsr(0x800 + reg / 16, v);
	else
		*apic_reg(reg) = v;
}

uint32_t apic_id(void)
{
	if (x2apic_mode)
		return (uint32_t)rdmsr(0x802);
	return *apic_reg(0x20) >> 24;
}

uint32_t cpu_initial_apic_id(void)
{
	if (cpuid(0, 0).a >= 0xb && cpuid(0xb, 0).b)
		return cpuid(0xb, 0).d; /* x2APIC ID, 32 bits */
	return cpuid(1, 0).b >> 24;
}

void apic_write_icr(uint32_t dest, uint32_t low)
{
	if (x2apic_mode) {
		wrmsr(0x830, (uint64_t)dest << 32 | low);
		return;
	}
	*apic_reg(0x310) = dest << 24;
	*apic_reg(0x300) = low;
	for (unsigned i = 0; i < 1000000 && (*apic_reg(0x300) & (1u << 12)); i++)
		cpu_relax(); /* delivery status */
}

extern const char sipi_start[], sipi_end[];

void smp_start_aps(void)
{
	memcpy((void *)(uintptr_t)KUT_TRAMPOLINE_ADDR, sipi_start, (size_t)(sipi_end - sipi_start));
	apic_write_icr(0, APIC_ICR_ALL_BUT_SELF | APIC_ICR_ASSERT | APIC_ICR_INIT);
	for (unsigned i = 0; i < 2; i++)
		apic_write_icr(0, APIC_ICR_ALL_BUT_SELF | APIC_ICR_ASSERT | APIC_ICR_STARTUP |
				  (KUT_TRAMPOLINE_ADDR >> 12));
}

void ap_main(unsigned index) __attribute__((weak));
void ap_main(unsigned index)
{
	(void)index;
}

/* Called from start.S in long mode on the boot stack. */
void kut_main64(void);
void kut_main64(void)
{
	setup_idt();
	if (kut_mb_magic != MB_BOOT_MAGIC) {
		printf("kut: entered with EAX 0x%x, not the multiboot magic\n", kut_mb_magic);
		exit(0x7e);
	}
	exit(main());
}
