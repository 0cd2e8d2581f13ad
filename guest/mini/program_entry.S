/* thaw-mini function runtime: entering the program and its system calls.
 *
 * LSTAR points at syscall_stub, alone in a user-accessible page:
 *
 *  - hardware KVM: SYSCALL enters ring 0 at the stub (RSP still the user's,
 *    RCX = return RIP, R11 = RFLAGS, SFMASK cleared IF/TF/DF/AC). Its
 *    int $0x80 goes through the IST_SYSCALL gate, so nothing is pushed on
 *    the user's stack (the red zone survives); the handler irets back to the
 *    stub, whose sysretq returns to the user.
 *  - PVM: SYSCALL lands at the stub still in ring 3; its int $0x80 arrives
 *    as #UD on the stub (or through the gate from ring 3). The handler then
 *    returns straight to the user's RCX with RFLAGS from R11 (sanitized).
 *
 * Either way every register but RAX (result), RCX and R11 is preserved. */
#include "layout.h"

	.section .text.user_stub, "ax"
	.globl syscall_stub
syscall_stub:
	int $0x80
	sysretq				/* only reached in ring 0 */

/* The program's first instructions, in ring 3: Linux starts a process with
 * x87 control word 0x37f (a CPU comes out of reset with 0x40); then `ret`
 * pops the ELF entry that program_enter left below the initial RSP. */
	.globl program_start_trampoline
program_start_trampoline:
	fninit
	ret

/* A system call's return to ring 3 when it queued copies (program_copy.c;
 * the stack as return_through_copies in program.c lays it out). The copies
 * run natively here; in ring 0 each byte would be emulated. RCX and R11
 * are the call's to clobber; RDI and RSI are restored. */
	.globl program_copy_trampoline
program_copy_trampoline:
	cld
	popq %r11			/* how many copies */
1:	testq %r11, %r11
	jz 2f
	popq %rdi
	popq %rsi
	popq %rcx
	rep movsb
	decq %r11
	jmp 1b
2:	popq %rdi
	popq %rsi
	popq %rax
	ret $128			/* to the caller, then past the red zone */

	.text
/* void program_enter(uint64_t entry, uint64_t stack_pointer): noreturn. */
	.globl program_enter
program_enter:
	movq %rdi, -8(%rsi)		/* the trampoline's return address */
	leaq -8(%rsi), %rsi
	pushq $SEL_USER_DATA		/* SS */
	pushq %rsi			/* RSP */
	pushq $0x2			/* RFLAGS: IF clear, as all ring-3 code here */
	pushq $SEL_USER_CODE		/* CS */
	pushq $program_start_trampoline	/* RIP */
	xorl %eax, %eax			/* the ABI wants RDX = 0; zero them all */
	xorl %ebx, %ebx
	xorl %ecx, %ecx
	xorl %edx, %edx
	xorl %esi, %esi
	xorl %edi, %edi
	xorl %ebp, %ebp
	xorl %r8d, %r8d
	xorl %r9d, %r9d
	xorl %r10d, %r10d
	xorl %r11d, %r11d
	xorl %r12d, %r12d
	xorl %r13d, %r13d
	xorl %r14d, %r14d
	xorl %r15d, %r15d
	iretq

/* Vector 0x80 (IST_SYSCALL): frame RIP, CS, RFLAGS, RSP, SS. */
	.globl int80_entry
int80_entry:
	testb $3, 8(%rsp)
	jz program_syscall		/* ring 0: the stub after a hardware SYSCALL */
	cmpb $0, program_running(%rip)
	je syscall_return		/* the built-in ring-3 function is done (traps.S) */
	cmpq $(SYSCALL_STUB_ADDR + 2), (%rsp)
	je program_syscall		/* the stub in ring 3, delivered through the gate */
	pushq $(VECTOR_SYSCALL * 8 + 2)	/* the program's own int $0x80: #GP-like fault */
	pushq $13
	jmp exception_dispatch

/* #UD on the stub from ring 3 (traps.S): drop vector and error code. */
	.globl ud_syscall_from_ring3
ud_syscall_from_ring3:
	addq $16, %rsp
	/* fall through */

/* Saves the GPRs above the CPU's frame (struct program_syscall_frame in
 * program.c), runs the call in C (which also rewrites the frame for a
 * ring-3 return), restores and irets. 5 + 15 quadwords from a 16-byte
 * aligned IST top keep the C call ABI-aligned. */
program_syscall:
	cld				/* C needs DF clear; a ring-3 path did not clear it */
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	call program_syscall_entry
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	iretq

	.section .data.program_state, "aw"
	.globl program_running
program_running:
	.byte 0

	.section .note.GNU-stack, "", @progbits
