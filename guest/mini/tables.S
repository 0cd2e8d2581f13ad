/* thaw-mini: descriptor tables and page tables as static data.
 *
 * Ring 0 is emulated on PVM hosts (~0.7 us per instruction), so nothing here
 * is filled in by a loop at boot: the assembler and linker produce the final
 * bytes, and the entry code only loads the registers that point at them. */
#include "layout.h"

/* An IDT gate: 64-bit interrupt gate to kernel CS. `addr` must be an
 * assembly-time constant, which is why the stubs live at ISR_BASE. Macro
 * arguments are split at spaces, so callers write expressions without any. */
.macro idt_gate addr, dpl=0, ist=0
	.word (\addr) & 0xffff
	.word SEL_KERNEL_CODE
	.byte \ist
	.byte 0x8e | ((\dpl) << 5)	/* present, 64-bit interrupt gate */
	.word ((\addr) >> 16) & 0xffff
	.long ((\addr) >> 32) & 0xffffffff
	.long 0
.endm

.macro absent_gates count
	.fill (\count) * 2, 8, 0
.endm

	.section .data.tables, "aw"

	.balign 4096
	.globl idt
idt:
	.set vector, 0
	.rept 32
	.if vector == 8
	idt_gate (ISR_BASE+vector*ISR_STRIDE), 0, IST_DOUBLE_FAULT
	.elseif vector == 6
	idt_gate (ISR_BASE+vector*ISR_STRIDE), 0, IST_SYSCALL
	.else
	idt_gate (ISR_BASE+vector*ISR_STRIDE)
	.endif
	.set vector, vector + 1
	.endr
	/* The LAPIC timer, the virtio device and the LAPIC spurious vectors are
	 * the only device interrupts: a stray one hits a not-present gate and
	 * is reported as #NP, which names the vector in its error code. */
	.if VECTOR_TIMER - 32
	.error "the timer gate must directly follow the 32 exception gates"
	.endif
	idt_gate (ISR_BASE+TIMER_STUB_SLOT*ISR_STRIDE)
	absent_gates (VECTOR_VIRTIO-VECTOR_TIMER-1)
	idt_gate (ISR_BASE+VIRTIO_STUB_SLOT*ISR_STRIDE)
	absent_gates (VECTOR_SYSCALL-VECTOR_VIRTIO-1)
	idt_gate (ISR_BASE+SYSCALL_STUB_SLOT*ISR_STRIDE), 3, IST_SYSCALL
	absent_gates (VECTOR_SPURIOUS-VECTOR_SYSCALL-1)
	idt_gate (ISR_BASE+SPURIOUS_STUB_SLOT*ISR_STRIDE)
idt_end:
	.if idt_end - idt - IDT_ENTRIES * 16
	.error "IDT is not 256 gates"
	.endif

	.balign 16
	.globl gdt
gdt:
	.quad 0				/* null */
	.quad 0x00cf9b000000ffff	/* 0x08 kernel code, 32-bit */
	.quad 0x00af9b000000ffff	/* 0x10 kernel code, 64-bit */
	.quad 0x00cf93000000ffff	/* 0x18 kernel data, also valid in 32-bit mode */
	.quad 0x00cffb000000ffff	/* 0x20 user code, 32-bit, DPL 3 (unused) */
	.quad 0x00cff3000000ffff	/* 0x28 user data, DPL 3 */
	.quad 0x00affb000000ffff	/* 0x30 user code, 64-bit, DPL 3 */
	.quad 0				/* 0x38 unused */
	/* 0x40 TSS: mini.ld splits the TSS address into descriptor fields. */
	.quad tss_descriptor_low
	.quad tss_descriptor_high
gdt_end:

	.balign 16
	.globl tss
tss:
	.long 0
	.quad trap_stack_top		/* RSP0: entry from ring 3 (int 0x80, faults) */
	.quad 0				/* RSP1 */
	.quad 0				/* RSP2 */
	.quad 0
	.quad df_stack_top		/* IST1: double fault */
	.quad syscall_stack_top		/* IST2: #UD and int $0x80 (thaw.after=program) */
	.fill 5, 8, 0			/* IST3..IST7 */
	.quad 0
	.word 0
	.word TSS_SIZE			/* I/O bitmap offset past the limit: no bitmap */
tss_end:
	.if tss_end - tss - TSS_SIZE
	.error "TSS layout is not 104 bytes"
	.endif

	/* Pseudo-descriptors for lgdt/lidt. The 32-bit PVH stub reads the same
	 * gdt_pointer: it takes the low 32 bits of the base, enough below 4 GiB. */
	.balign 16
	.word 0, 0, 0
	.globl gdt_pointer
gdt_pointer:
	.word gdt_end - gdt - 1
	.quad gdt

	.balign 16
	.word 0, 0, 0
	.globl idt_pointer
idt_pointer:
	.word idt_end - idt - 1
	.quad idt

/* Identity map of the first 4 GiB with 2 MiB pages, user-accessible so ring-3
 * code can run anywhere. The entry code clears CR4.SMEP/SMAP to match. */
	.section .data.page_tables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + PTE_PRESENT + PTE_WRITE + PTE_USER + PTE_ACCESSED
	.fill 511, 8, 0

	.balign 4096
	.globl pdpt
pdpt:
	.quad page_directories + 0x0000 + PTE_PRESENT + PTE_WRITE + PTE_USER + PTE_ACCESSED
	.quad page_directories + 0x1000 + PTE_PRESENT + PTE_WRITE + PTE_USER + PTE_ACCESSED
	.quad page_directories + 0x2000 + PTE_PRESENT + PTE_WRITE + PTE_USER + PTE_ACCESSED
	.quad page_directories + 0x3000 + PTE_PRESENT + PTE_WRITE + PTE_USER + PTE_ACCESSED
	.fill 508, 8, 0			/* 4 GiB and up: not present */

	.balign 4096
	.globl page_directories
page_directories:
	.set page, 0
	.rept 4 * 512
	.quad (page << 21) + PTE_PRESENT + PTE_WRITE + PTE_USER + PTE_LARGE + PTE_AD
	.set page, page + 1
	.endr

/* thaw.after=program: 4 KiB pages for the first 2 MiB (PD entry 0 points
 * here then). Supervisor-only, except the syscall stub's page, which user
 * code may read and execute but not write. Page 0 is absent, so a NULL
 * pointer in the kernel faults. */
	.balign 4096
	.globl program_low_page_table
program_low_page_table:
	.set page, 0
	.rept 512
	.if page == 0
	.quad 0
	.elseif page == (SYSCALL_STUB_ADDR >> 12)
	.quad (page << 12) + PTE_PRESENT + PTE_USER + PTE_AD
	.else
	.quad (page << 12) + PTE_PRESENT + PTE_WRITE + PTE_AD
	.endif
	.set page, page + 1
	.endr

/* Stacks need no initial contents: they live in .bss. */
	.section .bss.stacks, "aw", @nobits
	.balign 4096
	.globl boot_stack_top, trap_stack_top, df_stack_top, user_stack_top, syscall_stack_top
	.skip BOOT_STACK_SIZE
boot_stack_top:
	.skip TRAP_STACK_SIZE
trap_stack_top:
	.skip DF_STACK_SIZE
df_stack_top:
	.skip USER_STACK_SIZE
user_stack_top:
	.skip SYSCALL_STACK_SIZE
syscall_stack_top:

	.section .note.GNU-stack, "", @progbits
