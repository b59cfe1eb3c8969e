/* Linked into every Windows test program (tests/CMakeLists.txt): a crash must
 * never pass as success. Under Wine an unhandled exception sometimes comes
 * back as exit code 0; a process-wide unhandled-exception filter that ends
 * the process itself with a failing code is reliable (docs/windows.md).
 * cmocka installs its own filter while a test runs (and reports the crash as
 * a failed test); this one covers everything outside it: setup, teardown,
 * other threads, code before main. */
#include <windows.h>

/* Nonzero in its low byte too: Wine hands only that byte to the Linux
 * parent as the exit status. */
#define SC_CRASH_EXIT_CODE 0xC0DE0071u

/* Formats without the CRT: the crash may have happened inside stdio with its
 * lock held. */
static char *append_hex(char *out, ULONG_PTR value, int digit_count)
{
    static const char digits[] = "0123456789abcdef";
    int shift;
    *out++ = '0';
    *out++ = 'x';
    for (shift = (digit_count - 1) * 4; shift >= 0; shift -= 4) {
        *out++ = digits[(value >> shift) & 0xf];
    }
    return out;
}

static char *append_text(char *out, const char *text)
{
    while (*text != '\0') {
        *out++ = *text++;
    }
    return out;
}

static LONG WINAPI terminate_on_unhandled_exception(EXCEPTION_POINTERS *info)
{
    /* The wording matches the tests' FAIL_REGULAR_EXPRESSION as well. */
    char message[128];
    char *end = message;
    DWORD written = 0;
    end = append_text(end, "Unhandled exception ");
    end = append_hex(end, info->ExceptionRecord->ExceptionCode, 8);
    end = append_text(end, " at ");
    end = append_hex(end, (ULONG_PTR)info->ExceptionRecord->ExceptionAddress,
                     (int)sizeof(ULONG_PTR) * 2);
    end = append_text(end, " (win32_crash_guard)\r\n");
    WriteFile(GetStdHandle(STD_ERROR_HANDLE), message, (DWORD)(end - message),
              &written, NULL);
    TerminateProcess(GetCurrentProcess(), SC_CRASH_EXIT_CODE);
    return EXCEPTION_EXECUTE_HANDLER;
}

__attribute__((constructor)) static void install_crash_guard(void)
{
    /* No "program has stopped working" dialog on a real Windows runner. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    SetUnhandledExceptionFilter(terminate_on_unhandled_exception);
}
