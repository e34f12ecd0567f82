/* switch: the context switch of stackful processes, our own few
 * instructions (as Go's gogo/mcall and Boost.Context's fcontext): save the
 * callee-saved registers on the current stack, store the stack pointer,
 * load the other one, restore its registers and return into it. Nothing
 * else: no signal mask (the fault handler needs none, fault.c), no system
 * call. Top-level assembly in a C file, so the object carries the compiler's
 * .note.GNU-stack (a non-executable stack) without a .S rule.
 *
 * void *kri_ctx_switch(void **save, void *to, void *arg): *save gets this
 * side's stack pointer; the other side resumes returning arg (and a fresh
 * stack made by kri_ctx_make starts its entry with arg as first argument).
 *
 * What is saved, per the ABIs: x86-64 SysV, rbx rbp r12-r15; AArch64
 * AAPCS64, x19-x28, the frame pointer x29, the link register x30 and
 * d8-d15.
 *
 * Not switched: the floating-point environment (x86-64 MXCSR and the x87
 * control word, AArch64 FPCR). The ABIs call their control bits
 * callee-saved: a function that changes them (fesetround, fesetenv) must
 * put them back before it returns, unless changing them is its purpose.
 * krill treats a blocking call as it treats the return of a behaviour: the
 * environment is the scheduler thread's, shared by every process it runs,
 * so a process that changes it must restore it before it blocks, as a
 * behaviour must before it returns (krill.h, kr_fn). Go's runtime keeps
 * the same rule: its gogo switches neither. Saving them cost four
 * instructions a switch, two of them (ldmxcsr, fldcw) slow ones that wait
 * for the pipeline (docs/performance.md, "Stackful processes").
 *
 * x86-64 leaves with popq + jmpq rather than ret: the return stack
 * predicts a ret to the caller of this call, never the other stack's
 * caller, so a ret here mispredicts on every switch; an indirect jump is
 * predicted from its history (Boost.Context's fcontext does the same);
 * alternating runs of pingpong --stackful 2 measured it 10-15% faster. */
#include "core/fiber/fiber.h"

#if defined(__x86_64__)
__asm__(".text\n"
	".globl kri_ctx_switch\n"
	".hidden kri_ctx_switch\n"
	".type kri_ctx_switch,@function\n"
	".p2align 4\n"
	"kri_ctx_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	popq %rcx\n"
	"	movq %rdx, %rax\n"
	"	movq %rdx, %rdi\n"
	"	jmpq *%rcx\n"
	".size kri_ctx_switch, .-kri_ctx_switch\n");

/* The frame kri_ctx_switch pops: r15..rbx, rbp, the return address
 * (entry), and a zero return address for entry itself, which never
 * returns. Entry then starts with rsp = top - 8, as after a call. */
void *kri_ctx_make(void *top, void (*entry)(void *))
{
	uint64_t *sp = (uint64_t *)((uintptr_t)top & ~(uintptr_t)15);
	*--sp = 0;                          /* entry's return address: none */
	*--sp = (uint64_t)(uintptr_t)entry; /* where the switch returns */
	for (int i = 0; i < 6; i++)
		*--sp = 0; /* rbp rbx r12 r13 r14 r15 */
	return sp;
}
#elif defined(__aarch64__)
__asm__(".text\n"
	".globl kri_ctx_switch\n"
	".hidden kri_ctx_switch\n"
	".type kri_ctx_switch,%function\n"
	".p2align 4\n"
	"kri_ctx_switch:\n"
	"	sub sp, sp, #176\n"
	"	stp x19, x20, [sp, #0]\n"
	"	stp x21, x22, [sp, #16]\n"
	"	stp x23, x24, [sp, #32]\n"
	"	stp x25, x26, [sp, #48]\n"
	"	stp x27, x28, [sp, #64]\n"
	"	stp x29, x30, [sp, #80]\n"
	"	stp d8, d9, [sp, #96]\n"
	"	stp d10, d11, [sp, #112]\n"
	"	stp d12, d13, [sp, #128]\n"
	"	stp d14, d15, [sp, #144]\n"
	"	mov x9, sp\n"
	"	str x9, [x0]\n"
	"	mov sp, x1\n"
	"	ldp x19, x20, [sp, #0]\n"
	"	ldp x21, x22, [sp, #16]\n"
	"	ldp x23, x24, [sp, #32]\n"
	"	ldp x25, x26, [sp, #48]\n"
	"	ldp x27, x28, [sp, #64]\n"
	"	ldp x29, x30, [sp, #80]\n"
	"	ldp d8, d9, [sp, #96]\n"
	"	ldp d10, d11, [sp, #112]\n"
	"	ldp d12, d13, [sp, #128]\n"
	"	ldp d14, d15, [sp, #144]\n"
	"	add sp, sp, #176\n"
	"	mov x0, x2\n"
	"	ret\n"
	".size kri_ctx_switch, .-kri_ctx_switch\n");

/* The 176-byte frame kri_ctx_switch pops, with x30 (where ret goes) the
 * entry and x29 0 (the end of the frame chain); sp is then top, 16-aligned. */
void *kri_ctx_make(void *top, void (*entry)(void *))
{
	uint64_t *sp = (uint64_t *)(((uintptr_t)top & ~(uintptr_t)15) - 176);
	for (int i = 0; i < 22; i++)
		sp[i] = 0;
	sp[11] = (uint64_t)(uintptr_t)entry; /* x30, at [sp, #88] */
	return sp;
}
#else
/* A build for another architecture stops here (a static assertion, not
 * #error, so that cppcheck's look at every configuration stays quiet). */
_Static_assert(0, "stackful processes: no context switch for this architecture (x86-64, aarch64)");
#endif
