/* Writes the golden wire vectors: <dir>/<sample>.bin (one encoded Envelope,
 * no frame header) for every sample of tests/unit/wire_samples.c, and
 * <dir>/MANIFEST listing them. Built by CMake, never run by the tests: the
 * tests compare against the checked-in files. Run it through
 * tests/tools/regen_vectors.sh, which also writes the protoc text forms. */
#include "wire_samples.h"

#include <stdio.h>
#include <stdlib.h>

static bool write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return false;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        perror(path);
    }
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <vectors-dir>\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST", argv[1]);
    FILE *manifest = fopen(path, "wb");
    if (manifest == NULL) {
        perror(path);
        return 1;
    }
    fprintf(manifest, "# Golden wire vectors, one name per line "
                      "(tests/tools/regen_vectors.sh writes this file).\n");
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        size_t len = 0;
        uint8_t *bytes = sc_wire_encode_alloc(s->envelope, &len);
        if (bytes == NULL) {
            fprintf(stderr, "%s: cannot encode\n", s->name);
            return 1;
        }
        snprintf(path, sizeof path, "%s/%s.bin", argv[1], s->name);
        if (!write_file(path, bytes, len)) {
            return 1;
        }
        free(bytes);
        fprintf(manifest, "%s\n", s->name);
        printf("%s\n", s->name);
    }
    return fclose(manifest) == 0 ? 0 : 1;
}
