/* test_cg_blob.c — the weights object netc writes itself (cg_blob.c): its ELF structure, that
 * identical blobs are stored once and every blob is 64-byte aligned, and that code linked
 * against it reads exactly the bytes given, through each blob's own symbol. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/cg.h"
#include "testutil.h"

typedef struct Elf {
    unsigned char *bytes;
    size_t len;
} Elf;

static Elf read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    Elf e = {.len = (size_t)ftell(f)};
    fseek(f, 0, SEEK_SET);
    e.bytes = malloc(e.len);
    cr_assert_eq(fread(e.bytes, 1, e.len, f), e.len);
    fclose(f);
    return e;
}

static const Elf64_Shdr *section(const Elf *e, const char *name) {
    const Elf64_Ehdr *h = (const Elf64_Ehdr *)e->bytes;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(e->bytes + h->e_shoff);
    const char *names = (const char *)e->bytes + sh[h->e_shstrndx].sh_offset;
    for (int i = 0; i < h->e_shnum; i++)
        if (!strcmp(names + sh[i].sh_name, name)) return &sh[i];
    return NULL;
}

Test(cg_blob, elf_layout_dedup_and_linking) {
    Graph g = {.name = "blobtest"};
    Cg cg = {.g = &g};
    CgBlobs blobs = {0};
    cg.blobs = &blobs;
    cg.ctx = LLVMContextCreate();
    cg.mod = LLVMModuleCreateWithNameInContext("blobs", cg.ctx);
    /* a, b (3 floats, odd size), a again under another name, c; and an empty blob */
    float a[5] = {1, 2, 3, 4, 5}, b[3] = {-1.5f, 0.25f, 1e30f}, c[17];
    for (int i = 0; i < 17; i++) c[i] = (float)i * 0.5f;
    cg.part = 0;
    cg_weights(&cg, a, 5, "w.a");
    cg_weights(&cg, b, 3, "w.b");
    cg.part = 1;
    cg_weights(&cg, a, 5, "w.a"); /* another part: another symbol, the same bytes */
    cg_weights(&cg, c, 17, "w.c");
    cg_weights(&cg, c, 0, "w.empty");
    cr_assert_eq(blobs.len, 5);
    cr_assert_str_eq(blobs.items[0].sym, "blobtest.p0.w.a");
    cr_assert_str_eq(blobs.items[2].sym, "blobtest.p1.w.a");

    char dir[] = "/tmp/netc_blob_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char obj[128], src[128], so[128], cmd[512];
    snprintf(obj, sizeof obj, "%s/w.o", dir);
    snprintf(src, sizeof src, "%s/use.c", dir);
    snprintf(so, sizeof so, "%s/use.so", dir);
    Diags d;
    diags_init(&d);
    CgBlobs *lists[1] = {&blobs};
    int64_t stored = -1, total = -1;
    cr_assert(cg_blobs_write_elf(lists, 1, "x86_64-pc-linux-gnu", obj, &stored, &total, &d));
    cr_assert_eq(total, 4 * (5 + 3 + 5 + 17 + 0));
    /* a at 0 (20 B), b at 64 (12 B), c at 128 (68 B), the empty one at the next boundary: 256 */
    cr_assert_eq(stored, 256, "stored %lld", (long long)stored);

    Elf e = read_all(obj);
    const Elf64_Ehdr *h = (const Elf64_Ehdr *)e.bytes;
    cr_assert(!memcmp(h->e_ident, ELFMAG, SELFMAG));
    cr_assert_eq(h->e_type, ET_REL);
    cr_assert_eq(h->e_machine, EM_X86_64);
    const Elf64_Shdr *data = section(&e, ".rodata.netc.weights"), *symtab = section(&e, ".symtab"),
                     *strtab = section(&e, ".strtab");
    cr_assert(data && symtab && strtab && section(&e, ".note.GNU-stack"));
    cr_assert_eq(data->sh_addralign, 64);
    cr_assert_eq(data->sh_offset % 64, 0);
    cr_assert_eq((int64_t)data->sh_size, stored);
    const Elf64_Sym *sym = (const Elf64_Sym *)(e.bytes + symtab->sh_offset);
    int nsym = (int)(symtab->sh_size / sizeof *sym);
    cr_assert_eq(nsym, 6);
    int64_t want_off[5] = {0, 64, 0, 128, 256}, want_size[5] = {20, 12, 20, 68, 0};
    const void *want_data[5] = {a, b, a, c, c};
    for (int i = 1; i < nsym; i++) {
        const char *name = (const char *)e.bytes + strtab->sh_offset + sym[i].st_name;
        cr_assert_str_eq(name, blobs.items[i - 1].sym);
        cr_assert_eq(ELF64_ST_BIND(sym[i].st_info), STB_GLOBAL);
        cr_assert_eq(ELF64_ST_VISIBILITY(sym[i].st_other), STV_HIDDEN);
        cr_assert_eq((int64_t)sym[i].st_value, want_off[i - 1], "%s at %lld", name, (long long)sym[i].st_value);
        cr_assert_eq((int64_t)sym[i].st_size, want_size[i - 1]);
        cr_assert(!memcmp(e.bytes + data->sh_offset + sym[i].st_value, want_data[i - 1], (size_t)want_size[i - 1]));
    }
    free(e.bytes);

    /* linked: code reads each blob through its symbol, and the symbols are not exported */
    FILE *f = fopen(src, "w");
    cr_assert_not_null(f);
    fprintf(f, "#define H __attribute__((visibility(\"hidden\")))\n"
               "extern const float a0[] __asm__(\"blobtest.p0.w.a\") H;\n"
               "extern const float b0[] __asm__(\"blobtest.p0.w.b\") H;\n"
               "extern const float a1[] __asm__(\"blobtest.p1.w.a\") H;\n"
               "extern const float c1[] __asm__(\"blobtest.p1.w.c\") H;\n"
               "const float *blob(int i) { return i == 0 ? a0 : i == 1 ? b0 : i == 2 ? a1 : c1; }\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -o %s %s %s", so, src, obj);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(lib, "%s", dlerror());
    const float *(*blob)(int) = (const float *(*)(int))dlsym(lib, "blob");
    cr_assert_not_null(blob);
    cr_assert_null(dlsym(lib, "blobtest.p0.w.a"), "a weight symbol is exported");
    cr_assert(!memcmp(blob(0), a, sizeof a) && !memcmp(blob(1), b, sizeof b) && !memcmp(blob(3), c, sizeof c));
    cr_assert_eq(blob(0), blob(2), "identical blobs are not shared");
    cr_assert_eq((uintptr_t)blob(1) % 64, 0);
    dlclose(lib);
    unlink(obj), unlink(src), unlink(so), rmdir(dir);

    /* a path that cannot be written is an error naming it */
    cr_assert(!cg_blobs_write_elf(lists, 1, "x86_64-pc-linux-gnu", "/nonexistent/dir/w.o", NULL, NULL, &d));
    char *msg = diags_to_string(&d);
    cr_assert(strstr(msg, "/nonexistent/dir/w.o") && strstr(msg, "cannot write"), "%s", msg);
    free(msg);
    diags_free(&d);
    cg_blobs_free(&blobs);
    LLVMDisposeModule(cg.mod);
    LLVMContextDispose(cg.ctx);
}
