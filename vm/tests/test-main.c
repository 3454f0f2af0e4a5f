/*
 * test-main.c -- runs the registered tests (all, or those whose name
 * contains argv[1]) and reports "N passed, M failed".
 */

#include "runner.h"

struct test_case *test_cases;
int test_failures;

void *
read_prog(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    void *buf;
    long n;

    snprintf(path, sizeof path, "%s/%s", OKOVM_PROGS_DIR, name);
    f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    rewind(f);
    buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != (size_t) n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = n;
    return buf;
}

int
main(int argc, char *argv[])
{
    struct test_case *tc, *rev = NULL;
    int passed = 0, failed = 0;

    /* Constructors ran in reverse; restore file order. */
    while (test_cases) {
        tc = test_cases;
        test_cases = tc->next;
        tc->next = rev;
        rev = tc;
    }
    for (tc = rev; tc; tc = tc->next) {
        int before = test_failures;

        if (argc > 1 && !strstr(tc->name, argv[1])) {
            continue;
        }
        tc->fn();
        if (test_failures == before) {
            passed++;
        } else {
            fprintf(stderr, "FAIL: %s\n", tc->name);
            failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
