// The command line: one file per subcommand, dispatched by run_cli().
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace tame::cli {

/// Parses argv and runs a subcommand. Every user-caused failure is one line on
/// stderr ("tame: error: ...") and a non-zero exit.
int run_cli(int argc, char** argv);

void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_sample(CLI::App& app);
void add_info(CLI::App& app);  // `tame models` and `tame data`
void add_compress(CLI::App& app);
void add_decompress(CLI::App& app);
void add_baselines(CLI::App& app);
void add_reconstruct(CLI::App& app);  // latent models: reconstructions and latent grids
void add_classifier(CLI::App& app);   // the FID classifier of a data set

/// Set by a subcommand's callback: the process exit code.
extern int g_exit_code;

/// The command line as run_cli got it (`tame train --nproc N` starts it again
/// as each rank).
extern std::vector<std::string> g_argv;

}  // namespace tame::cli
