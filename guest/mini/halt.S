/* thaw-mini-halt: measures pure VMM overhead. Both entries signal boot
 * complete (byte 123 to MMIO 0xd0000000), ask for a clean exit (0 to port
 * 0xf4) and stop. Nothing else runs, so a cold boot or restore of this image
 * times the VMM alone. */
#include "layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f
	.long 4f - 3f
	.long XEN_ELFNOTE_PHYS32_ENTRY
1:	.asciz "Xen"
2:	.balign 4
3:	.quad halt_pvh_entry32		/* 8 bytes, as Linux and QEMU 7.2 expect */
4:	.balign 4

	.text
	.code64
	.globl halt_entry64
halt_entry64:
	/* A disp32 would sign-extend 0xd0000000, so the address goes in a register. */
	movl $BOOT_COMPLETE_ADDR, %eax
	movb $BOOT_COMPLETE_VALUE, (%rax)
	xorl %eax, %eax
	outb %al, $DEBUG_EXIT_PORT
1:	cli
	hlt
	jmp 1b

	.section .text32, "ax"
	.code32
	.globl halt_pvh_entry32
halt_pvh_entry32:
	movb $BOOT_COMPLETE_VALUE, BOOT_COMPLETE_ADDR	/* paging is off: physical */
	xorl %eax, %eax
	outb %al, $DEBUG_EXIT_PORT
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
