/* Token identities and the security descriptors of our kernel objects. */
#include "win32_internal.h"

#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads one token information class into a malloc'ed buffer. */
static void *token_info(HANDLE token, TOKEN_INFORMATION_CLASS cls)
{
    DWORD size = 0;
    GetTokenInformation(token, cls, NULL, 0, &size);
    if (size == 0) {
        return NULL;
    }
    void *info = malloc(size);
    if (info != NULL && !GetTokenInformation(token, cls, info, size, &size)) {
        free(info);
        info = NULL;
    }
    return info;
}

static PSID copy_sid(PSID sid)
{
    DWORD len = GetLengthSid(sid);
    PSID copy = malloc(len);
    if (copy != NULL && !CopySid(len, copy, sid)) {
        free(copy);
        copy = NULL;
    }
    return copy;
}

static bool well_known(PSID sid, WELL_KNOWN_SID_TYPE type)
{
    BYTE buf[SECURITY_MAX_SID_SIZE];
    DWORD len = sizeof buf;
    return CreateWellKnownSid(type, NULL, buf, &len) && EqualSid(sid, buf);
}

/* SYSTEM, or an enabled member of BUILTIN\Administrators (an elevated
 * token; UAC's filtered token has the group as deny-only). */
static bool token_privileged(HANDLE token, PSID user)
{
    if (well_known(user, WinLocalSystemSid)) {
        return true;
    }
    TOKEN_GROUPS *groups = token_info(token, TokenGroups);
    bool admin = false;
    for (DWORD i = 0; groups != NULL && i < groups->GroupCount && !admin; i++) {
        const SID_AND_ATTRIBUTES *g = &groups->Groups[i];
        admin = (g->Attributes & SE_GROUP_ENABLED) != 0 &&
                (g->Attributes & SE_GROUP_USE_FOR_DENY_ONLY) == 0 &&
                well_known(g->Sid, WinBuiltinAdministratorsSid);
    }
    free(groups);
    return admin;
}

PSID win32_process_sid(HANDLE process, bool *privileged)
{
    HANDLE token;
    if (!OpenProcessToken(process, TOKEN_QUERY, &token)) {
        return NULL;
    }
    TOKEN_USER *user = token_info(token, TokenUser);
    PSID sid = user != NULL ? copy_sid(user->User.Sid) : NULL;
    if (sid != NULL && privileged != NULL) {
        *privileged = token_privileged(token, sid);
    }
    free(user);
    CloseHandle(token);
    return sid;
}

static INIT_ONCE self_once = INIT_ONCE_STATIC_INIT;
static PSID self_sid;

static BOOL CALLBACK find_self_sid(INIT_ONCE *once, void *param, void **ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    /* The process token: an impersonating thread must not change who we
     * are (names, admission). */
    self_sid = win32_process_sid(GetCurrentProcess(), NULL);
    return TRUE;
}

PSID win32_self_sid(void)
{
    InitOnceExecuteOnce(&self_once, find_self_sid, NULL, NULL);
    return self_sid;
}

int win32_shared_sd(bool deny_network, const char *const *sids, size_t n,
                    DWORD access, PSECURITY_DESCRIPTOR *out)
{
    PSID self = win32_self_sid();
    char *self_text = NULL;
    if (self == NULL || !ConvertSidToStringSidA(self, &self_text)) {
        return UV_EPERM;
    }
    /* P: protected, nothing inherited. NU: NETWORK (remote logons),
     * SY: LocalSystem, GA: generic all. */
    size_t size = 128 + strlen(self_text) + n * (SC_SID_MAX + 24);
    char *sddl = malloc(size);
    if (sddl == NULL) {
        LocalFree(self_text);
        return UV_ENOMEM;
    }
    int len = snprintf(sddl, size, "D:P%s(A;;GA;;;SY)(A;;GA;;;%s)",
                       deny_network ? "(D;;GA;;;NU)" : "", self_text);
    LocalFree(self_text);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* Only a well-formed SID goes into the SDDL text. */
        PSID sid = NULL;
        if (!ConvertStringSidToSidA(sids[i], &sid)) {
            rc = UV_EINVAL;
            break;
        }
        LocalFree(sid);
        len += snprintf(sddl + len, size - (size_t)len, "(A;;0x%lx;;;%s)",
                        (unsigned long)access, sids[i]);
    }
    PSECURITY_DESCRIPTOR sd = NULL;
    if (rc == 0 && !ConvertStringSecurityDescriptorToSecurityDescriptorA(
                       sddl, SDDL_REVISION_1, &sd, NULL)) {
        rc = win32_error(GetLastError());
    }
    free(sddl);
    *out = sd;
    return rc;
}

PSECURITY_DESCRIPTOR win32_private_sd(bool deny_network)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    return win32_shared_sd(deny_network, NULL, 0, 0, &sd) == 0 ? sd : NULL;
}

int win32_set_dacl(HANDLE object, PSECURITY_DESCRIPTOR sd)
{
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
        return win32_error(GetLastError());
    }
    DWORD err = SetSecurityInfo(object, SE_KERNEL_OBJECT,
                                DACL_SECURITY_INFORMATION |
                                    PROTECTED_DACL_SECURITY_INFORMATION,
                                NULL, NULL, dacl, NULL);
    return err == ERROR_SUCCESS ? 0 : win32_error(err);
}

typedef enum object_kind {
    OBJECT_MUTEX,
    OBJECT_EVENT,
    OBJECT_MAPPING
} object_kind_t;

static HANDLE create_private(object_kind_t kind, const WCHAR *name,
                             uint64_t size)
{
    PSECURITY_DESCRIPTOR sd = win32_private_sd(false);
    if (sd == NULL) {
        SetLastError(ERROR_INVALID_SECURITY_DESCR);
        return NULL;
    }
    SECURITY_ATTRIBUTES sa = {sizeof sa, sd, FALSE};
    HANDLE h = NULL;
    switch (kind) {
    case OBJECT_MUTEX:
        h = CreateMutexW(&sa, FALSE, name);
        break;
    case OBJECT_EVENT:
        h = CreateEventW(&sa, TRUE, FALSE, name);
        break;
    case OBJECT_MAPPING:
        h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE,
                               (DWORD)(size >> 32), (DWORD)size, name);
        break;
    }
    DWORD err = GetLastError(); /* ERROR_ALREADY_EXISTS matters to callers */
    LocalFree(sd);
    SetLastError(err);
    return h;
}

HANDLE win32_private_mutex(const WCHAR *name)
{
    return create_private(OBJECT_MUTEX, name, 0);
}

HANDLE win32_private_event(const WCHAR *name)
{
    return create_private(OBJECT_EVENT, name, 0);
}

HANDLE win32_private_mapping(const WCHAR *name, uint64_t size)
{
    return create_private(OBJECT_MAPPING, name, size);
}
