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
#define SYSCALL_STUB_SLOT 32  /* the int 0x80 stub follows the 32 exception stubs */
#define TIMER_STUB_SLOT 33    /* LAPIC timer interrupt */
#define SPURIOUS_STUB_SLOT 34 /* LAPIC spurious interrupt */
#define VIRTIO_STUB_SLOT 35   /* virtio-mmio device interrupt (IOAPIC) */
#define ISR_SLOTS 36

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
/* thaw.after=program: #UD and int $0x80 run on their own stack, so that an
 * int $0x80 executed in ring 0 right after SYSCALL (still on the user's
 * stack) never writes below the user's RSP (its red zone). */
#define IST_SYSCALL 2

/* thaw.after=program: the syscall entry stub (LSTAR) sits alone in this
 * 4 KiB page, the only user-accessible page below PROGRAM_USER_BASE.
 * mini.ld places it; tables.S's low page table marks it. */
#define SYSCALL_STUB_ADDR 0x101000

#define VECTOR_TIMER 0x20    /* LAPIC timer, periodic (lapic.c) */
#define VECTOR_VIRTIO 0x25   /* virtio-mmio vsock, IOAPIC pin = its IRQ (virtio_vsock.c) */
#define VECTOR_SYSCALL 0x80
#define VECTOR_SPURIOUS 0xff /* LAPIC spurious-interrupt vector (SVR) */
#define IDT_ENTRIES 256

/* Page-table entry bits. */
#define PTE_PRESENT 0x1
#define PTE_WRITE 0x2
#define PTE_USER 0x4
#define PTE_ACCESSED 0x20
#define PTE_DIRTY 0x40
#define PTE_LARGE 0x80
/* Accessed and dirty set from the start: otherwise the first access after a
 * reset makes the MMU write them into a page-table page, which dirties that
 * page, and resetting it makes the host rebuild every shadow mapping derived
 * from it (PVM shadows guest page tables). */
#define PTE_AD (PTE_ACCESSED | PTE_DIRTY)

/* Control-register bits the entry code touches. */
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_SMEP 0x100000
#define CR4_SMAP 0x200000
#define MSR_EFER 0xc0000080
#define EFER_SCE 0x1
#define EFER_LME 0x100
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define CR0_MP 0x2
#define CR0_EM 0x4
#define CR0_TS 0x8
#define CR0_NE 0x20
#define CR4_OSFXSR 0x200
#define CR4_OSXMMEXCPT 0x400

/* Devices. */
#define BOOT_COMPLETE_ADDR 0xd0000000 /* byte write of 123: boot complete */
#define BOOT_COMPLETE_VALUE 123
/* A byte stored here is an exit code, as on DEBUG_EXIT_PORT; for ring 3
 * (thaw-init), where a port needs the I/O permission bitmap. */
#define BOOT_COMPLETE_EXIT_OFFSET 8
#define DEBUG_EXIT_PORT 0xf4 /* thaw debug-exit / QEMU isa-debug-exit */
#define EXIT_CODE_SUCCESS 0x00
#define EXIT_CODE_GUEST_FAILURE 0x31
#define EXIT_CODE_NO_CONTROL_PAGE 0x32 /* thaw.after=clone without a control page */
#define EXIT_CODE_NO_DEVICE 0x33       /* thaw.after=agent without a usable vsock device */
/* The guest powered itself off (a program's reboot(2)): the VM ends cleanly,
 * not as a failure. Any guest may write it; thaw-init and the mini guest do. */
#define EXIT_CODE_POWER_OFF 0x50

/* Local APIC (xAPIC MMIO, the architectural default base; inside our 4 GiB
 * identity map, left cacheable: KVM's in-kernel LAPIC traps the accesses
 * whatever the memory type). Only the registers the timer needs. */
#define LAPIC_BASE 0xfee00000
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_TIMER_INITIAL_COUNT 0x380
#define LAPIC_TIMER_CURRENT_COUNT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0
#define LAPIC_EOI_ADDR (LAPIC_BASE + LAPIC_EOI)
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_TIMER_PERIODIC 0x20000
#define LAPIC_LVT_MASKED 0x10000
#define LAPIC_DIVIDE_BY_16 0x3
/* KVM's LAPIC timer counts at 1 GHz (APIC bus cycle 1 ns) before the divider:
 * 125000 * 16 ns = 2 ms per tick. See README.md for the measured period. */
#define LAPIC_TIMER_COUNT 125000
/* The same clock divided by 16: counts per millisecond (sleep, TSC calibration). */
#define LAPIC_COUNTS_PER_MS 62500

/* Legacy 8259 PIC data ports (interrupt mask registers). */
#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_DATA 0xa1

/* I/O APIC (KVM's in-kernel one; the MP table maps ISA IRQ n to pin n). */
#define IOAPIC_BASE 0xfec00000
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REDIRECTION_TABLE 0x10 /* entry n: registers 0x10+2n (low), 0x11+2n (high) */
#define IOAPIC_PINS 24

/* Control page: guest/mini/control_page_abi.h (shared with the VMM). */
#include "control_page_abi.h"

/* thaw.after=clone writes its 64 KiB of derived bytes here (ring 3), so a
 * VMM or test can read them back from guest memory. mini.ld asserts that the
 * image (with .bss) ends below it. */
#define CLONE_BUFFER_ADDR 0x200000
#define CLONE_BUFFER_SIZE 0x10000

/* thaw.after=agent (agent.c): the invoke request stream buffer (also the
 * vsock receive buffer whose size the guest advertises as buf_alloc), the
 * response buffer, and the free RAM the "touch" function writes to (up to
 * the end of the RAM region that holds the image). */
#define AGENT_REQUEST_ADDR 0x300000
#define AGENT_REQUEST_CAPACITY 0x110000  /* 1 MiB request + 64 KiB of what follows it */
#define AGENT_RESPONSE_ADDR 0x500000
#define AGENT_RESPONSE_CAPACITY 0x110000
/* The vsock driver's 16 receive buffers, 64 KiB each (virtio_vsock.c): a
 * packet of the device's largest payload fits one buffer. Only the pages
 * the device writes become dirty. */
#define VSOCK_RX_BUFFERS_ADDR 0x700000
#define VSOCK_RX_BUFFER_SIZE 0x10000
#define VSOCK_RX_BUFFERS_END (VSOCK_RX_BUFFERS_ADDR + 16 * VSOCK_RX_BUFFER_SIZE)
#define AGENT_RAM_NEEDED VSOCK_RX_BUFFERS_END
#define AGENT_TOUCH_ADDR 0x1000000

/* How the guest was entered: passed to kmain in EDI. */
#define BOOT_KIND_LINUX 0 /* 64-bit Linux boot protocol, RSI = boot_params */
#define BOOT_KIND_PVH 1   /* PVH 32-bit entry, EBX = hvm_start_info */

#define BOOT_STACK_SIZE 16384
#define TRAP_STACK_SIZE 8192 /* TSS RSP0: kernel stack on entry from ring 3 */
#define DF_STACK_SIZE 4096   /* IST1: double faults get a known-good stack */
#define USER_STACK_SIZE 8192
#define SYSCALL_STACK_SIZE 16384 /* IST_SYSCALL: the runtime's C code runs on it */

#endif
