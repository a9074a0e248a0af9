// polymoe: the headless front end over core.
#include <cstdio>
#include <cstring>

int main(int argc, char **argv)
{
    if (argc > 1 && std::strcmp(argv[1], "--version") == 0) {
        std::printf("polymoe %s\n", POLYMOE_VERSION);
        return 0;
    }
    std::fprintf(stderr, "usage: polymoe --version\n");
    return 2;
}
