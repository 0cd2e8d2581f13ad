/* thaw-mini: memcpy, memmove and memset for the C code (gcc may call them for any
 * struct copy, and the function runtime moves request payloads with them).
 * One `rep movsb` / `rep stosb` each: ring 0 is emulated on PVM hosts, where
 * a string instruction costs about as much as any other single instruction,
 * while a byte loop costs per byte. The direction flag is clear in ring 0
 * (SFMASK clears it on SYSCALL; program_entry.S clears it on int/#UD). */
	.text
	.globl memcpy
memcpy:					/* rdi = dst, rsi = src, rdx = count */
	movq %rdi, %rax
	movq %rdx, %rcx
	rep movsb
	ret

	.globl memmove
memmove:				/* memcpy that allows the ranges to overlap */
	movq %rdi, %rax
	movq %rdx, %rcx
	cmpq %rsi, %rdi
	jbe 1f				/* dst <= src: forward is safe */
	leaq (%rsi,%rdx), %r8
	cmpq %r8, %rdi
	jae 1f				/* dst at or past the source's end: no overlap */
	leaq -1(%rsi,%rdx), %rsi	/* dst inside the source: copy backward */
	leaq -1(%rdi,%rdx), %rdi
	std
	rep movsb
	cld
	ret
1:	rep movsb
	ret

	.globl memset
memset:					/* rdi = dst, esi = byte, rdx = count */
	movq %rdi, %r8
	movl %esi, %eax
	movq %rdx, %rcx
	rep stosb
	movq %r8, %rax
	ret

	.section .note.GNU-stack, "", @progbits
