/* Entry of vireo's kvm-unit-tests style test kernels.
 *
 * The VMM enters _start in 32-bit protected mode as multiboot v1 promises (EAX = 0x2BADB002,
 * EBX = multiboot information, flat segments, paging off). We build identity page tables for
 * the first 4 GiB (2 MiB pages; 3-4 GiB uncached for the APIC and other MMIO), enable SSE
 * (OSFXSR/OSXMMEXCPT, the C code is built with -msse2), switch to long mode and call C main
 * through kut_main64.
 *
 * Application processors start at sipi_start, a 16-bit trampoline the BSP copies to a page
 * below 1 MiB before INIT/SIPI. It loads our GDT, jumps to ap_start32 in this image, which
 * takes the same path to long mode, picks a stack by an atomic counter and calls ap_main.
 */
#define MB_MAGIC     0x1BADB002
#define MB_FLAGS     0x00000002          /* memory information wanted */
#define MSR_EFER     0xc0000080
#define EFER_LME     (1 << 8)
#define CR0_PE       (1 << 0)
#define CR0_MP       (1 << 1)
#define CR0_EM       (1 << 2)
#define CR0_WP       (1 << 16)
#define CR0_PG       0x80000000
#define CR4_PAE      (1 << 5)
#define CR4_OSFXSR   (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define KUT_MAX_CPUS 1024
#define AP_STACK     4096
#define BSP_STACK    16384

	.section .multiboot, "a"
	.balign 4
	.long MB_MAGIC, MB_FLAGS, 0x100000000 - (MB_MAGIC + MB_FLAGS)

	.section .bss
	.balign 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4 * 4096
	.balign 16
bsp_stack:
	.skip BSP_STACK
bsp_stack_top:
	.globl ap_stacks
ap_stacks:
	.skip KUT_MAX_CPUS * AP_STACK
	.globl kut_mb_magic, kut_mb_info, ap_next_index
kut_mb_magic:	.long 0
kut_mb_info:	.long 0
ap_next_index:	.long 0

	.section .data
	.balign 16
	.globl gdt64
gdt64:
	.quad 0
	.quad 0x00af9b000000ffff        /* 0x08: 64-bit code */
	.quad 0x00cf93000000ffff        /* 0x10: data */
	.quad 0x00cf9b000000ffff        /* 0x18: 32-bit code */
gdt64_end:
	.balign 8
gdt64_desc:
	.word gdt64_end - gdt64 - 1
	.quad gdt64

	.section .text
	.code32
/* Shared by the BSP and the APs (a macro, not a function: APs have no stack yet):
 * GDT, PAE + SSE, CR3, EFER.LME, paging. */
.macro ENTER_LONG_MODE
	lgdt gdt64_desc
	mov %cr4, %eax
	or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	and $~CR0_EM, %eax
	or $(CR0_PE | CR0_MP | CR0_WP | CR0_PG), %eax
	mov %eax, %cr0
.endm

	.globl _start
_start:
	cli
	mov %eax, kut_mb_magic
	mov %ebx, kut_mb_info
	mov $bsp_stack_top, %esp
	call build_page_tables
	ENTER_LONG_MODE
	ljmp $0x08, $bsp_start64

/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages covering 4 GiB.
 * Entries from 3 GiB up are uncached (PCD|PWT): that is where MMIO lives. */
build_page_tables:
	mov $pdpt + 3, %eax
	mov %eax, pml4
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $12, %eax
	add $pd + 3, %eax
	mov %eax, pdpt(, %ecx, 8)
	inc %ecx
	cmp $4, %ecx
	jb 1b
	xor %ecx, %ecx
2:	mov %ecx, %eax
	shl $21, %eax
	or $0x83, %eax                  /* present, writable, 2 MiB page; supervisor */
	cmp $1536, %ecx
	jb 3f
	or $0x18, %eax                  /* PWT | PCD */
3:	mov %eax, pd(, %ecx, 8)
	mov %ecx, %eax
	shr $11, %eax
	mov %eax, pd + 4(, %ecx, 8)
	inc %ecx
	cmp $2048, %ecx
	jb 2b
	ret

	.code64
bsp_start64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov $bsp_stack_top, %rsp
	call kut_main64
4:	cli
	hlt
	jmp 4b

/* ---- application processors ---- */
	.code16
	.globl sipi_start, sipi_end
sipi_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl sipi_gdt_desc - sipi_start
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $0x18, $ap_start32
	.balign 4
sipi_gdt_desc:
	.word gdt64_end - gdt64 - 1
	.long gdt64
sipi_end:

	.code32
ap_start32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	ENTER_LONG_MODE
	ljmp $0x08, $ap_start64

	.code64
ap_start64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $1, %eax
	lock xaddl %eax, ap_next_index
	cmp $KUT_MAX_CPUS, %eax
	jae 6f
	mov %eax, %edi                  /* ap_main(index) */
	inc %eax
	shl $12, %rax                   /* AP_STACK */
	add $ap_stacks, %rax
	mov %rax, %rsp
	call ap_main
6:	cli
	hlt
	jmp 6b

/* ---- exceptions: one stub per vector 0-31, pushing a dummy error code where the CPU does
 * not, then the vector; kut_exception(frame) in C. ---- */
	.section .text
#define EXC_NOERR(n) exc##n: pushq $0; pushq $n; jmp exc_common
#define EXC_ERR(n)   exc##n: pushq $n; jmp exc_common
EXC_NOERR(0)
EXC_NOERR(1)
EXC_NOERR(2)
EXC_NOERR(3)
EXC_NOERR(4)
EXC_NOERR(5)
EXC_NOERR(6)
EXC_NOERR(7)
EXC_ERR(8)
EXC_NOERR(9)
EXC_ERR(10)
EXC_ERR(11)
EXC_ERR(12)
EXC_ERR(13)
EXC_ERR(14)
EXC_NOERR(15)
EXC_NOERR(16)
EXC_ERR(17)
EXC_NOERR(18)
EXC_NOERR(19)
EXC_NOERR(20)
EXC_ERR(21)
EXC_NOERR(22)
EXC_NOERR(23)
EXC_NOERR(24)
EXC_NOERR(25)
EXC_NOERR(26)
EXC_NOERR(27)
EXC_NOERR(28)
EXC_ERR(29)
EXC_ERR(30)
EXC_NOERR(31)

exc_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call kut_exception
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp                   /* vector, error code */
	iretq

/* External interrupts (one stub for every vector a test installs): caller-saved registers,
 * kut_irq() in C (counts, sends EOI), iretq. */
	.globl kut_irq_stub
kut_irq_stub:
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	call kut_irq
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	iretq

	.section .rodata
	.balign 8
	.globl kut_exc_stubs
kut_exc_stubs:
	.quad exc0, exc1, exc2, exc3, exc4, exc5, exc6, exc7
	.quad exc8, exc9, exc10, exc11, exc12, exc13, exc14, exc15
	.quad exc16, exc17, exc18, exc19, exc20, exc21, exc22, exc23
	.quad exc24, exc25, exc26, exc27, exc28, exc29, exc30, exc31

	.section .note.GNU-stack, "", @progbits
