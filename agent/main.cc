#include <cstdio>
int main() { std::puts("sync-agent " SA_VERSION); return 0; }
