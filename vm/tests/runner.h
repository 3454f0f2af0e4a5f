/*
 * runner.h -- a minimal unit-test runner for libokovm: TEST() registers a
 * function, CHECK*() record failures with file and line and keep going.
 */

#ifndef OKOVM_RUNNER_H
#define OKOVM_RUNNER_H 1

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
    struct test_case *next;
};

extern struct test_case *test_cases;
extern int test_failures;

#define TEST(NAME)                                                      \
    static void test_##NAME(void);                                      \
    static struct test_case tc_##NAME = { #NAME, test_##NAME, NULL };   \
    __attribute__((constructor)) static void reg_##NAME(void)          \
    {                                                                   \
        tc_##NAME.next = test_cases;                                    \
        test_cases = &tc_##NAME;                                        \
    }                                                                   \
    static void test_##NAME(void)

#define CHECK(COND)                                                     \
    do {                                                                \
        if (!(COND)) {                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,      \
                    __LINE__, #COND);                                   \
            test_failures++;                                            \
        }                                                               \
    } while (0)

#define CHECK_EQ(A, B)                                                  \
    do {                                                                \
        uint64_t a_ = (uint64_t) (A), b_ = (uint64_t) (B);              \
        if (a_ != b_) {                                                 \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %#"PRIx64    \
                    ", expected %s == %#"PRIx64"\n", __FILE__, __LINE__, \
                    #A, a_, #B, b_);                                    \
            test_failures++;                                            \
        }                                                               \
    } while (0)

#define CHECK_STR(HAYSTACK, NEEDLE)                                     \
    do {                                                                \
        if (!strstr((HAYSTACK), (NEEDLE))) {                            \
            fprintf(stderr, "%s:%d: '%s' not found in: %s\n", __FILE__, \
                    __LINE__, (NEEDLE), (HAYSTACK));                    \
            test_failures++;                                            \
        }                                                               \
    } while (0)

/* Reads file 'name' of directory OKOVM_PROGS_DIR; exits on failure. */
void *read_prog(const char *name, size_t *len);

#endif /* runner.h */
