/* Unit tests for gateway/uri.c: which request paths hold a dot segment, on both sides of the
 * rule (a segment of exactly one or two dots, each dot plain or percent-encoded). */
#include <stdbool.h>
#include <string.h>

#include <criterion/criterion.h>

#include "gateway/uri.h"

/* 60 s like trace_context, which runs just before: Criterion 2.4.1 with --jobs 2 leaks a timeout
 * record (LeakSanitizer fails the run) when a test starts with an earlier deadline than one
 * still running. */
TestSuite(uri, .timeout = 60);

/* The whole string as the path. */
static bool has_dot(const char *path)
{
    return tg_path_has_dot_segment(path, strlen(path));
}

static void expect_all(const char *const *paths, size_t n, bool want)
{
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(has_dot(paths[i]), want, "\"%s\": expected %s", paths[i],
                     want ? "a dot segment" : "none");
    }
}

#define EXPECT_ALL(paths, want) expect_all(paths, sizeof(paths) / sizeof((paths)[0]), want)

Test(uri, one_or_two_dots_are_dot_segments)
{
    const char *bad[] = {"/.", "/..", "/a/./b", "/a/../b", "/./a", "/../a", "/a/b/./"};

    EXPECT_ALL(bad, true);
}

Test(uri, trailing_dot_dot_is_a_dot_segment)
{
    const char *bad[] = {"/a/..", "/a/b/..", "/a/."};

    EXPECT_ALL(bad, true);
}

Test(uri, percent_encoded_dots_in_either_case_count)
{
    const char *bad[] = {"/%2e",      "/%2E",      "/%2e%2e",   "/%2E%2e",
                         "/%2e%2E/a", "/a/%2e./b", "/a/.%2E/b", "/a/%2E%2E"};

    EXPECT_ALL(bad, true);
}

Test(uri, three_dots_and_dotted_names_are_not)
{
    const char *ok[] = {"/...",   "/a/.../b",       "/.a",    "/a.",        "/a/..b",
                        "/a/b..", "/.well-known/x", "/a/b.c", "/%2e%2e%2e", "/%2e%2e."};

    EXPECT_ALL(ok, false);
}

Test(uri, other_escapes_and_cut_escapes_are_not_dots)
{
    const char *ok[] = {"/%2f..", "/..%2f", "/%2e%2f", "/%3e", "/%2", "/%2e%2", "/%", "/%e2"};

    EXPECT_ALL(ok, false);
}

Test(uri, empty_paths_and_empty_segments_are_not)
{
    const char *ok[] = {"", "/", "//", "/a//b/", "/a/"};

    EXPECT_ALL(ok, false);
}

Test(uri, segments_without_a_leading_slash_count_too)
{
    const char *bad[] = {".", "..", "a/..", "%2e"};

    EXPECT_ALL(bad, true);
    cr_expect_not(has_dot("a"));
}

Test(uri, query_is_not_part_of_the_path)
{
    const char *target = "/a?x=/../y";
    size_t path_len = strcspn(target, "?");

    cr_expect_not(tg_path_has_dot_segment(target, path_len));
    /* the same bytes, taken as a path, do hold one: the caller's length is what counts */
    cr_expect(tg_path_has_dot_segment(target, strlen(target)));
}

Test(uri, only_len_bytes_are_read)
{
    /* "/a/..x" is fine as a whole, but its first 5 bytes end in a ".." segment */
    cr_expect_not(tg_path_has_dot_segment("/a/..x", 6));
    cr_expect(tg_path_has_dot_segment("/a/..x", 5));
    cr_expect(tg_path_has_dot_segment("/a/.x", 4));
    cr_expect_not(tg_path_has_dot_segment("/../", 0));
    cr_expect_not(tg_path_has_dot_segment("/../", 1));
    cr_expect(tg_path_has_dot_segment("/../", 2));
}
