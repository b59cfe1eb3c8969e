/* Which file holds a given piece of code: the DLL (or program) whose image
 * contains the address. */
#include "win32_internal.h"

int sc_plat_module_path(const void *address, char *out, size_t size)
{
    HMODULE module = NULL;
    if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                                GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCWSTR)address, &module)) {
        return uv_translate_sys_error((int)GetLastError());
    }
    WCHAR wide[MAX_PATH * 4];
    DWORD n = GetModuleFileNameW(module, wide, sizeof wide / sizeof wide[0]);
    if (n == 0 || n >= sizeof wide / sizeof wide[0]) {
        return UV_ENAMETOOLONG;
    }
    int len =
        WideCharToMultiByte(CP_UTF8, 0, wide, -1, out, (int)size, NULL, NULL);
    return len > 0 ? 0 : UV_ENOBUFS;
}
