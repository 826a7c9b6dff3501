// The tame command-line tool: see `tame --help` and README.md.
#include "tame/cli/cli.h"

int main(int argc, char** argv) { return tame::cli::run_cli(argc, argv); }
