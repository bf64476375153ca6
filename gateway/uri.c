#include "gateway/uri.h"

/* s (n bytes) is one or two dots, each '.' or its percent-encoded spelling. */
static bool is_dot_segment(const char *s, size_t n)
{
    size_t dots = 0;

    for (size_t i = 0; i < n;) {
        if (s[i] == '.') {
            i++;
        } else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' &&
                   (s[i + 2] == 'e' || s[i + 2] == 'E')) {
            i += 3;
        } else {
            return false;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

bool tg_path_has_dot_segment(const char *path, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || path[i] == '/') {
            if (is_dot_segment(path + start, i - start)) {
                return true;
            }
            start = i + 1;
        }
    }
    return false;
}
