/* cg_blob.c — weights outside LLVM. A kernel's weights are an external hidden symbol in its
 * module; their bytes go here, into a blob list, and at the end into one relocatable ELF object
 * written directly (one read-only section, one symbol per blob, identical blobs stored once),
 * which the linker puts beside the kernels. LLVM never sees the 45-100 MB of a ResNet: building
 * them as constants, uniquing them, and printing them byte by byte through its assembler cost
 * more than a third of a compile (DESIGN.md, "Compile speed"). */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

/* A 64-bit hash of the bytes, eight at a time (identical blobs are found by hash, then memcmp). */
static uint64_t blob_hash(const unsigned char *p, int64_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

LLVMValueRef cg_weights(Cg *cg, const float *data, int64_t count, const char *name) {
    char sym[512];
    snprintf(sym, sizeof sym, "%s.p%d.%s", cg->g->name, cg->part, name);
    int64_t bytes = count * 4;
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMArrayType2(LLVMInt8TypeInContext(cg->ctx), (uint64_t)bytes), sym);
    LLVMSetLinkage(gv, LLVMExternalLinkage);
    LLVMSetVisibility(gv, LLVMHiddenVisibility);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetAlignment(gv, 64);
    CgBlobs *bl = cg->blobs;
    if (bl->len == bl->cap) {
        bl->cap = bl->cap ? 2 * bl->cap : 32;
        bl->items = xrealloc(bl->items, (size_t)bl->cap * sizeof *bl->items);
    }
    CgBlob *b = &bl->items[bl->len++];
    size_t len;
    b->sym = xstrdup(LLVMGetValueName2(gv, &len)); /* LLVM's, made unique in the module */
    b->bytes = bytes;
    b->data = xmalloc((size_t)(bytes ? bytes : 1));
    memcpy(b->data, data, (size_t)bytes);
    b->hash = blob_hash(b->data, bytes);
    return gv;
}

void cg_blobs_free(CgBlobs *bl) {
    for (int i = 0; i < bl->len; i++) free(bl->items[i].sym), free(bl->items[i].data);
    free(bl->items);
    *bl = (CgBlobs){0};
}

#define BLOB_ALIGN 64

static int64_t align_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

static bool put(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

static bool pad_to(FILE *f, int64_t *at, int64_t to) {
    static const unsigned char zeros[BLOB_ALIGN];
    while (*at < to) {
        size_t n = (size_t)(to - *at < BLOB_ALIGN ? to - *at : BLOB_ALIGN);
        if (!put(f, zeros, n)) return false;
        *at += (int64_t)n;
    }
    return true;
}

bool cg_blobs_write_elf(CgBlobs *const *lists, int nlists, const char *triple, const char *path, int64_t *stored,
                        int64_t *total, Diags *d) {
    /* lay out: each distinct blob once, 64-byte aligned, in list order (deterministic) */
    int n = 0;
    for (int l = 0; l < nlists; l++) n += lists[l]->len;
    CgBlob **all = xcalloc((size_t)(n ? n : 1), sizeof *all);
    int64_t *off = xcalloc((size_t)(n ? n : 1), sizeof *off);
    int *same = xcalloc((size_t)(n ? n : 1), sizeof *same); /* the first identical blob */
    int k = 0;
    for (int l = 0; l < nlists; l++)
        for (int i = 0; i < lists[l]->len; i++) all[k++] = &lists[l]->items[i];
    int64_t size = 0, sum = 0;
    size_t strsz = 1;
    for (int i = 0; i < n; i++) {
        sum += all[i]->bytes;
        strsz += strlen(all[i]->sym) + 1;
        same[i] = i;
        for (int j = 0; j < i; j++)
            if (same[j] == j && all[j]->hash == all[i]->hash && all[j]->bytes == all[i]->bytes &&
                !memcmp(all[j]->data, all[i]->data, (size_t)all[i]->bytes)) {
                same[i] = j;
                break;
            }
        if (same[i] == i) {
            size = align_up(size, BLOB_ALIGN);
            off[i] = size;
            size += all[i]->bytes;
        } else {
            off[i] = off[same[i]];
        }
    }
    if (stored) *stored = size;
    if (total) *total = sum;

    /* sections: null, .rodata.netc.weights, .note.GNU-stack, .symtab, .strtab, .shstrtab */
    static const char shstr[] = "\0.rodata.netc.weights\0.note.GNU-stack\0.symtab\0.strtab\0.shstrtab";
    enum { SH_NULL, SH_DATA, SH_NOTE, SH_SYMTAB, SH_STRTAB, SH_SHSTRTAB, SH_COUNT };
    const Elf64_Word shname[SH_COUNT] = {0, 1, 22, 38, 46, 54};
    int64_t data_at = BLOB_ALIGN; /* right after the 64-byte ELF header */
    int64_t sym_at = align_up(data_at + size, 8);
    int64_t symsz = (int64_t)sizeof(Elf64_Sym) * (n + 1);
    int64_t str_at = sym_at + symsz;
    int64_t shstr_at = str_at + (int64_t)strsz;
    int64_t sh_at = align_up(shstr_at + (int64_t)sizeof shstr, 8);

    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh.e_type = ET_REL;
    eh.e_machine = !strncmp(triple, "aarch64", 7) ? EM_AARCH64 : EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_shoff = (Elf64_Off)sh_at;
    eh.e_ehsize = sizeof eh;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = SH_COUNT;
    eh.e_shstrndx = SH_SHSTRTAB;

    Elf64_Shdr sh[SH_COUNT] = {0};
    for (int s = 0; s < SH_COUNT; s++) sh[s].sh_name = shname[s];
    sh[SH_DATA] = (Elf64_Shdr){.sh_name = shname[SH_DATA], .sh_type = SHT_PROGBITS, .sh_flags = SHF_ALLOC,
                               .sh_offset = (Elf64_Off)data_at, .sh_size = (Elf64_Xword)size, .sh_addralign = BLOB_ALIGN};
    sh[SH_NOTE] = (Elf64_Shdr){.sh_name = shname[SH_NOTE], .sh_type = SHT_PROGBITS, .sh_offset = (Elf64_Off)sym_at,
                               .sh_addralign = 1};
    sh[SH_SYMTAB] = (Elf64_Shdr){.sh_name = shname[SH_SYMTAB], .sh_type = SHT_SYMTAB, .sh_offset = (Elf64_Off)sym_at,
                                 .sh_size = (Elf64_Xword)symsz, .sh_link = SH_STRTAB, .sh_info = 1,
                                 .sh_addralign = 8, .sh_entsize = sizeof(Elf64_Sym)};
    sh[SH_STRTAB] = (Elf64_Shdr){.sh_name = shname[SH_STRTAB], .sh_type = SHT_STRTAB, .sh_offset = (Elf64_Off)str_at,
                                 .sh_size = (Elf64_Xword)strsz, .sh_addralign = 1};
    sh[SH_SHSTRTAB] = (Elf64_Shdr){.sh_name = shname[SH_SHSTRTAB], .sh_type = SHT_STRTAB,
                                   .sh_offset = (Elf64_Off)shstr_at, .sh_size = sizeof shstr, .sh_addralign = 1};

    bool ok = false;
    FILE *f = fopen(path, "wb");
    if (!f) {
        diag_error(d, (SrcLoc){.file = path}, "cannot write: %s", strerror(errno));
        goto out;
    }
    int64_t at = 0;
    ok = put(f, &eh, sizeof eh);
    at = sizeof eh;
    ok = ok && pad_to(f, &at, data_at);
    for (int i = 0; ok && i < n; i++) {
        if (same[i] != i) continue;
        ok = pad_to(f, &at, data_at + off[i]) && put(f, all[i]->data, (size_t)all[i]->bytes);
        at += all[i]->bytes;
    }
    ok = ok && pad_to(f, &at, sym_at);
    Elf64_Sym none = {0};
    ok = ok && put(f, &none, sizeof none);
    Elf64_Word name_at = 1;
    for (int i = 0; ok && i < n; i++) {
        Elf64_Sym s = {.st_name = name_at, .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT),
                       .st_other = STV_HIDDEN, .st_shndx = SH_DATA, .st_value = (Elf64_Addr)off[i],
                       .st_size = (Elf64_Xword)all[i]->bytes};
        ok = put(f, &s, sizeof s);
        name_at += (Elf64_Word)strlen(all[i]->sym) + 1;
    }
    ok = ok && put(f, "", 1);
    for (int i = 0; ok && i < n; i++) ok = put(f, all[i]->sym, strlen(all[i]->sym) + 1);
    ok = ok && put(f, shstr, sizeof shstr);
    at = shstr_at + (int64_t)sizeof shstr;
    ok = ok && pad_to(f, &at, sh_at) && put(f, sh, sizeof sh);
    ok = (fclose(f) == 0) && ok;
    if (!ok) diag_error(d, (SrcLoc){.file = path}, "cannot write: %s", strerror(errno));
out:
    free(all), free(off), free(same);
    return ok;
}
