/* 8250/16550A UART at 0x3f8 (COM1), IRQ 4: enough for Linux's 8250 driver and early console.
 * Transmit is immediate (THR always empty), receive has a 64-byte FIFO fed from the console
 * input on the main thread. The interrupt line follows IIR: high while an enabled condition
 * (received data, THR empty) is pending. Loopback mode (MCR bit 4) reflects MCR onto MSR and
 * loops transmitted bytes into the receiver, which the driver's probe checks.
 *
 * Console: "stdio" (stdin in raw mode while the guest runs, restored on exit), a file path
 * (output only) or "none". */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/vm.h"
#include "devices/legacy/legacy.h"
#include "util/log.h"

#define COM1_PORT 0x3f8
#define COM1_IRQ  4
#define RX_FIFO   64

/* Registers (offsets from the base). */
#define UART_RX  0  /* DLAB=0 read */
#define UART_TX  0  /* DLAB=0 write */
#define UART_DLL 0  /* DLAB=1 */
#define UART_IER 1
#define UART_DLM 1  /* DLAB=1 */
#define UART_IIR 2  /* read */
#define UART_FCR 2  /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IIR_NO_INT 0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RCVR 0x02
#define LCR_DLAB  0x80
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

struct serial {
	pthread_mutex_t lock;
	struct vm *vm;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thri_pending;    /* THR-empty interrupt raised, not yet acknowledged */
	bool irq_level;       /* last level given to KVM */
	uint8_t rx[RX_FIFO];
	unsigned rx_head, rx_count;
	int out_fd;           /* -1: console "none" */
	int in_fd;            /* -1: no input */
	bool owns_out;
	bool raw;             /* in_fd's terminal settings changed */
	struct termios saved;
};

static struct serial com1;

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_count)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thri_pending)
		return IIR_THRI | fifo;
	return IIR_NO_INT | fifo;
}

/* Lock held. Raise or lower IRQ 4 when the pending state changed. */
static void serial_update_irq(struct serial *s)
{
	bool level = !(serial_iir(s) & IIR_NO_INT);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (vm_irq_line(s->vm, COM1_IRQ, level))
		pr_debug("serial: KVM_IRQ_LINE failed");
}

static void serial_rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_count == RX_FIFO)
		return;   /* overrun: drop */
	s->rx[(s->rx_head + s->rx_count) % RX_FIFO] = c;
	s->rx_count++;
}

static void serial_tx(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		serial_rx_push(s, c);
	} else if (s->out_fd >= 0) {
		ssize_t r;

		do
			r = write(s->out_fd, &c, 1);
		while (r < 0 && errno == EINTR);
	}
	s->thri_pending = true;
}

static uint8_t serial_msr(const struct serial *s)
{
	uint8_t m = s->mcr;

	if (!(m & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	return ((m & MCR_RTS) ? MSR_CTS : 0) | ((m & MCR_DTR) ? MSR_DSR : 0) |
	       ((m & MCR_OUT1) ? MSR_RI : 0) | ((m & MCR_OUT2) ? MSR_DCD : 0);
}

static uint8_t serial_read(struct serial *s, unsigned off)
{
	uint8_t v;

	switch (off) {
	case UART_RX:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (!s->rx_count)
			return 0;
		v = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % RX_FIFO;
		s->rx_count--;
		return v;
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR:
		v = serial_iir(s);
		if ((v & 0x0f) == IIR_THRI)
			s->thri_pending = false;   /* reading IIR acknowledges THRE */
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case UART_MSR:
		return serial_msr(s);
	default:
		return s->scr;
	}
}

static void serial_write(struct serial *s, unsigned off, uint8_t v)
{
	switch (off) {
	case UART_TX:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_tx(s, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		/* Enabling THRI while THR is empty raises the interrupt at once. */
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thri_pending = true;
		s->ier = v & 0x0f;
		break;
	case UART_FCR:
		if (v & FCR_CLEAR_RCVR)
			s->rx_count = 0;
		s->fcr = v & FCR_ENABLE;
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break;    /* LSR, MSR: read-only */
	}
}

static int serial_io(void *opaque, uint64_t offset, void *data, unsigned size, bool is_write)
{
	struct serial *s = opaque;
	uint8_t *b = data;

	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	if (is_write)
		serial_write(s, offset, *b);
	else
		*b = serial_read(s, offset);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Main thread: console input into the receive FIFO. */
static bool serial_input(void *opaque)
{
	struct serial *s = opaque;
	uint8_t buf[RX_FIFO];
	ssize_t n;

	n = read(s->in_fd, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 && (errno == EINTR || errno == EAGAIN);
	pthread_mutex_lock(&s->lock);
	for (ssize_t i = 0; i < n; i++)
		serial_rx_push(s, buf[i]);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return true;
}

static void serial_restore_tty(void)
{
	if (com1.raw) {
		tcsetattr(com1.in_fd, TCSAFLUSH, &com1.saved);
		com1.raw = false;
	}
}

/* stdin in raw mode, but keeping ISIG so that Ctrl-C still stops vireo. */
static void serial_raw_stdin(struct serial *s)
{
	struct termios t;

	if (!isatty(s->in_fd) || tcgetattr(s->in_fd, &s->saved) < 0)
		return;
	t = s->saved;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(s->in_fd, TCSAFLUSH, &t) == 0) {
		s->raw = true;
		atexit(serial_restore_tty);
	}
}

static int serial_open_console(struct serial *s, const char *console)
{
	s->out_fd = s->in_fd = -1;
	if (!console || !strcmp(console, "stdio")) {
		s->out_fd = STDOUT_FILENO;
		s->in_fd = STDIN_FILENO;
		serial_raw_stdin(s);
		return vm_watch_fd(s->vm, s->in_fd, serial_input, s);
	}
	if (!strcmp(console, "none"))
		return 0;
	s->out_fd = open(console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s->out_fd < 0) {
		pr_err("--console %s: %s", console, strerror(errno));
		return -errno;
	}
	s->owns_out = true;
	return 0;
}

int serial_init(struct vm *vm)
{
	struct serial *s = &com1;
	int ret;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->vm = vm;
	s->mcr = MCR_OUT2;
	ret = serial_open_console(s, vm->cfg.console);
	if (ret)
		return ret;
	return bus_register(&vm->pio, COM1_PORT, 8, serial_io, s, "serial");
}

void serial_exit(struct vm *vm)
{
	(void)vm;
	serial_restore_tty();
	if (com1.owns_out && com1.out_fd >= 0)
		close(com1.out_fd);
	com1.out_fd = -1;
}
