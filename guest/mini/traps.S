/* thaw-mini: exception stubs, the ring-3 entry and the int 0x80 return gate.
 *
 * Ring 3 ends with `int $0x80` (RAX = result): through the DPL-3 gate on
 * hardware KVM and TCG, and as a #UD on that instruction on PVM hosts (see
 * exception_common). Either way the kernel resumes after enter_user.
 *
 * The stubs are laid out at ISR_BASE + slot * ISR_STRIDE (slot = vector for
 * the 32 exceptions, then the slots named in layout.h) (mini.ld places
 * this section at ISR_BASE and checks it) so that tables.S can assemble the
 * IDT without any boot-time fix-ups. */
#include "layout.h"

/* CPU exceptions that push an error code themselves. */
#define HAS_ERROR_CODE(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

	.section .text.isr, "ax"
	.code64
	.globl isr_stubs
isr_stubs:
	.set vector, 0
	.rept 32
	.org vector * ISR_STRIDE, 0x90
	.if !HAS_ERROR_CODE(vector)
	pushq $0			/* same frame shape for every vector */
	.endif
	pushq $vector
	jmp exception_common
	.set vector, vector + 1
	.endr

/* int $0x80: from ring 3 the user function is done and its result is in RAX
 * (syscall_return: the ring-3 frame is not needed, so go straight back to
 * the kernel stack saved by enter_user and return from it); in
 * thaw.after=program it is the syscall stub's (program_entry.S). */
	.org SYSCALL_STUB_SLOT * ISR_STRIDE, 0x90
	jmp int80_entry

/* LAPIC timer (VECTOR_TIMER): the handler is one stride too long to sit here. */
	.org TIMER_STUB_SLOT * ISR_STRIDE, 0x90
	jmp timer_interrupt

/* LAPIC spurious interrupt (VECTOR_SPURIOUS): no EOI, by definition. */
	.org SPURIOUS_STUB_SLOT * ISR_STRIDE, 0x90
	iretq

/* virtio-mmio device interrupt (VECTOR_VIRTIO, through the IOAPIC). */
	.org VIRTIO_STUB_SLOT * ISR_STRIDE, 0x90
	jmp virtio_interrupt

	.text
exception_common:
	/* Stack: vector, error code, RIP, CS, RFLAGS, RSP, SS (struct trap_frame).
	 *
	 * PVM hosts do not deliver `int $0x80` from ring 3 through our gate: the
	 * guest sees #UD at the int instruction instead. A #UD from ring 3 on the
	 * bytes cd 80 is therefore the same system call (RAX is untouched). */
	cmpq $6, (%rsp)
	jne 1f
	testb $3, 24(%rsp)
	jz 1f
	/* thaw.after=program on PVM: SYSCALL ran the stub in ring 3 and its
	 * int $0x80 became this #UD. No register may change before the save. */
	cmpq $SYSCALL_STUB_ADDR, 16(%rsp)
	je ud_syscall_from_ring3
	cmpb $0, program_running(%rip)
	jne 1f				/* the program's own #UD: a fault */
	movq 16(%rsp), %rcx
	cmpw $0x80cd, (%rcx)
	je syscall_return
1:
	.globl exception_dispatch
exception_dispatch:
	movq %rsp, %rdi
	call exception_report		/* noreturn: reports and ends the VM */

	.globl syscall_return
syscall_return:
	movl $SEL_KERNEL_DATA, %ecx	/* ring transition left SS null */
	movl %ecx, %ss
	movq kernel_resume_rsp(%rip), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret				/* from enter_user, RAX = result */

/* Periodic LAPIC timer tick: count it and EOI. Interrupts reach the kernel
 * only from ring 0 (ring 3 always runs with IF clear) and every ring-0
 * instruction is emulated on PVM, so this is as short as it gets. The EOI
 * address is loaded as a zero-extended imm32 (a disp32 would sign-extend). */
timer_interrupt:
	pushq %rax
	incq timer_ticks(%rip)
	movl $LAPIC_EOI_ADDR, %eax
	movl $0, (%rax)
	popq %rax
	iretq

/* virtio-mmio interrupt: acknowledge both InterruptStatus bits (used
 * buffer, configuration change) without reading the register first (the
 * driver polls its used rings after every wake-up and handles no
 * configuration changes, so it has no use for the value; that saves an exit
 * to the VMM), EOI, done: 6 instructions, two exits. The IOAPIC pin is
 * edge-triggered, so an event that arrives after the acknowledgement raises
 * a fresh edge. */
virtio_interrupt:
	pushq %rax
	movq virtio_irq_mmio_base(%rip), %rax
	movl $3, 0x64(%rax)		/* InterruptACK */
	movl $LAPIC_EOI_ADDR, %eax
	movl $0, (%rax)
	popq %rax
	iretq

/* uint64_t enter_user(void (*entry)(uint64_t), uint64_t arg, void *stack_top)
 * Runs entry(arg) in ring 3 on stack_top; returns the RAX that entry passes
 * to int $0x80. Callee-saved registers are kept on this stack meanwhile. */
	.globl enter_user
enter_user:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, kernel_resume_rsp(%rip)
	pushq $SEL_USER_DATA		/* SS */
	pushq %rdx			/* RSP */
	pushq $0x2			/* RFLAGS: IF off, nothing to interrupt us yet */
	pushq $SEL_USER_CODE		/* CS */
	pushq %rdi			/* RIP */
	movq %rsi, %rdi
	iretq

	.section .data.trap_state, "aw"
	.balign 8
kernel_resume_rsp:
	.quad 0

	/* The virtio-mmio device the interrupt handler acknowledges (set by
	 * virtio_vsock.c before it routes the IOAPIC pin). */
	.globl virtio_irq_mmio_base
virtio_irq_mmio_base:
	.quad 0

	/* Timer interrupts handled since boot; C reads it as volatile. */
	.globl timer_ticks
timer_ticks:
	.quad 0

	.section .note.GNU-stack, "", @progbits
