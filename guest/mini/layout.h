/* thaw-mini: constants shared by the assembly, the C code and (by value) the
 * linker script. Everything the guest agrees on with a VMM lives here. */
#ifndef THAW_MINI_LAYOUT_H
#define THAW_MINI_LAYOUT_H

/* Load address: Linux's 64-bit boot protocol and PVH both load us here. */
#define IMAGE_BASE 0x100000

/* Exception stubs sit at a fixed address with a fixed stride so that the IDT
 * can be assembled as static data (a gate splits the handler address into
 * three fields, which no relocation can express). mini.ld asserts this. */
#define ISR_BASE IMAGE_BASE
#define ISR_STRIDE 16
#define SYSCALL_STUB_SLOT 32 /* the int 0x80 stub follows the 32 exception stubs */

/* GDT selectors: Linux's x86-64 layout, slot for slot. 0x10/0x18 are what the
 * VMM (and our own PVH stub) load, so CS never needs a far reload; and PVM
 * runs guest ring 3 on the HOST's GDT, so the user selectors must be the
 * host's (Linux's) __USER32_CS/__USER_DS/__USER_CS values to mean the same
 * segments there. */
#define SEL_KERNEL32_CODE 0x08
#define SEL_KERNEL_CODE 0x10
#define SEL_KERNEL_DATA 0x18
#define SEL_USER32_CODE (0x20 | 3)
#define SEL_USER_DATA (0x28 | 3)
#define SEL_USER_CODE (0x30 | 3)
#define SEL_TSS 0x40

#define TSS_SIZE 104
#define IST_DOUBLE_FAULT 1

#define VECTOR_SYSCALL 0x80
#define IDT_ENTRIES 256

/* Page-table entry bits. */
#define PTE_PRESENT 0x1
#define PTE_WRITE 0x2
#define PTE_USER 0x4
#define PTE_LARGE 0x80

/* Control-register bits the entry code touches. */
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_SMEP 0x100000
#define CR4_SMAP 0x200000
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100

/* Devices. */
#define BOOT_COMPLETE_ADDR 0xd0000000 /* byte write of 123: boot complete */
#define BOOT_COMPLETE_VALUE 123
#define DEBUG_EXIT_PORT 0xf4 /* thaw debug-exit / QEMU isa-debug-exit */
#define EXIT_CODE_SUCCESS 0x00
#define EXIT_CODE_GUEST_FAILURE 0x31

/* How the guest was entered: passed to kmain in EDI. */
#define BOOT_KIND_LINUX 0 /* 64-bit Linux boot protocol, RSI = boot_params */
#define BOOT_KIND_PVH 1   /* PVH 32-bit entry, EBX = hvm_start_info */

#define BOOT_STACK_SIZE 16384
#define TRAP_STACK_SIZE 8192 /* TSS RSP0: kernel stack on entry from ring 3 */
#define DF_STACK_SIZE 4096   /* IST1: double faults get a known-good stack */
#define USER_STACK_SIZE 8192

#endif
