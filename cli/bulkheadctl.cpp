// bulkheadctl: the client of bulkheadd. Everything is in cli/ctl*.cpp; only this file sees the
// commit, so a new commit recompiles one file.
#include "cli/ctl.hpp"

int main(int argc, char **argv) { return bulkhead::ctl::run(argc, argv, BULKHEAD_COMMIT); }
