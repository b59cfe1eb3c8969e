/* Shared memory (docs/shared-state.md): a named mapping backed by the paging
 * file, "Local\<name>", readable and writable by this user and SYSTEM only. It
 * lives while anyone has it open, so "remove" is just the creator's close,
 * and ownership is not a uid: give_to has nothing to do. */
#include "win32_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sc_plat_shm {
    HANDLE mapping;
    void *addr;
    size_t size;
};

static int mapping_name(const char *name, WCHAR *out, size_t count)
{
    char full[WIN32_NAME_MAX];
    int n = snprintf(full, sizeof full, "Local\\%s", name);
    if (n < 0 || (size_t)n >= sizeof full || strchr(name, '\\') != NULL) {
        return UV_EINVAL;
    }
    return win32_widen(full, out, count);
}

int sc_plat_shm_create(const char *name, size_t size, sc_plat_shm_t **out)
{
    WCHAR wname[WIN32_NAME_MAX];
    int rc = mapping_name(name, wname, WIN32_NAME_MAX);
    sc_plat_shm_t *s = rc == 0 ? calloc(1, sizeof *s) : NULL;
    if (s == NULL) {
        return rc != 0 ? rc : UV_ENOMEM;
    }
    s->mapping = win32_private_mapping(wname, size);
    DWORD err = GetLastError();
    if (s->mapping == NULL) {
        free(s);
        return win32_error(err);
    }
    bool existed = err == ERROR_ALREADY_EXISTS;
    s->addr = MapViewOfFile(s->mapping, FILE_MAP_WRITE, 0, 0, size);
    if (s->addr == NULL) {
        rc = win32_error(GetLastError());
        CloseHandle(s->mapping);
        free(s);
        return rc;
    }
    s->size = size;
    if (existed) {
        /* A stale segment some reader still holds: start from zero, as a
         * new one would. */
        memset(s->addr, 0, size);
    }
    *out = s;
    return 0;
}

int sc_plat_shm_open_readonly(const char *name, sc_plat_shm_t **out)
{
    WCHAR wname[WIN32_NAME_MAX];
    int rc = mapping_name(name, wname, WIN32_NAME_MAX);
    sc_plat_shm_t *s = rc == 0 ? calloc(1, sizeof *s) : NULL;
    if (s == NULL) {
        return rc != 0 ? rc : UV_ENOMEM;
    }
    s->mapping = OpenFileMappingW(FILE_MAP_READ, FALSE, wname);
    if (s->mapping == NULL) {
        DWORD err = GetLastError();
        free(s);
        return err == ERROR_FILE_NOT_FOUND ? UV_ENOENT : win32_error(err);
    }
    s->addr = MapViewOfFile(s->mapping, FILE_MAP_READ, 0, 0, 0);
    MEMORY_BASIC_INFORMATION info;
    if (s->addr == NULL || VirtualQuery(s->addr, &info, sizeof info) == 0) {
        rc = win32_error(GetLastError());
        if (s->addr != NULL) {
            UnmapViewOfFile(s->addr);
        }
        CloseHandle(s->mapping);
        free(s);
        return rc;
    }
    s->size = info.RegionSize; /* whole pages: at least what was created */
    *out = s;
    return 0;
}

void *sc_plat_shm_addr(sc_plat_shm_t *shm)
{
    return shm->addr;
}

size_t sc_plat_shm_size(sc_plat_shm_t *shm)
{
    return shm->size;
}

int sc_plat_shm_give_to(sc_plat_shm_t *shm, uint32_t uid)
{
    (void)shm;
    (void)uid;
    return 0;
}

void sc_plat_shm_close(sc_plat_shm_t *shm, bool remove)
{
    (void)remove; /* the name goes with the last handle */
    if (shm != NULL) {
        UnmapViewOfFile(shm->addr);
        CloseHandle(shm->mapping);
        free(shm);
    }
}
