/* AddressSanitizer and fork(), for the integration tests that fork
 * threaded processes (labelled "fork").
 *
 * 1. The ASan runtimes of Debian 12 (GCC 12's libasan, clang 14-16's
 *    compiler-rt) do not hold their allocator's locks across fork(): a
 *    child forked while another thread of the parent was inside malloc
 *    inherits a held allocator lock and hangs at its first allocation
 *    (seen here in SizeClassAllocator64::GetFromAllocator). LLVM 18's
 *    runtime fixed it by taking those locks in a pthread_atfork handler
 *    (llvm-project pull request 75290); this file does the same with the
 *    same runtime functions, which the runtime defines on every platform.
 *    The handler is registered before anything else, so its prepare runs
 *    last (after the library's own, which may allocate) and its
 *    parent/child handlers first. Without ASan the weak symbols are
 *    absent and nothing is registered.
 * 2. A forked child inherits memory that the parent's other threads held
 *    in local variables at that instant; those threads do not exist in
 *    the child, so LeakSanitizer would report it at the child's exit
 *    though nothing leaked. Leak checking stays on in the process that
 *    started the test (__lsan_is_turned_off is LeakSanitizer's documented
 *    opt-out, consulted at exit). */
#include <pthread.h>
#include <unistd.h>

/* compiler-rt / libasan internals (C++ names), weak: absent without ASan. */
void _ZN6__asan18asan_mz_force_lockEv(void) __attribute__((weak));
void _ZN6__asan20asan_mz_force_unlockEv(void) __attribute__((weak));
void _ZN11__sanitizer17StackDepotLockAllEv(void) __attribute__((weak));
void _ZN11__sanitizer19StackDepotUnlockAllEv(void) __attribute__((weak));

int __lsan_is_turned_off(void);

static pid_t test_pid;

static void lock_runtime(void)
{
    _ZN11__sanitizer17StackDepotLockAllEv();
    _ZN6__asan18asan_mz_force_lockEv();
}

static void unlock_runtime(void)
{
    _ZN6__asan20asan_mz_force_unlockEv();
    _ZN11__sanitizer19StackDepotUnlockAllEv();
}

__attribute__((constructor)) static void sanitizer_fork_setup(void)
{
    test_pid = getpid();
    if (_ZN6__asan18asan_mz_force_lockEv != NULL &&
        _ZN6__asan20asan_mz_force_unlockEv != NULL &&
        _ZN11__sanitizer17StackDepotLockAllEv != NULL &&
        _ZN11__sanitizer19StackDepotUnlockAllEv != NULL) {
        pthread_atfork(lock_runtime, unlock_runtime, unlock_runtime);
    }
}

int __lsan_is_turned_off(void)
{
    return getpid() != test_pid;
}
