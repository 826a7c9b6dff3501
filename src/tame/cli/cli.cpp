#include "tame/cli/cli.h"

#include <cstdio>

#include "tame/build_info.h"
#include "tame/common.h"

namespace tame::cli {

int g_exit_code = 0;
std::vector<std::string> g_argv;

int run_cli(int argc, char** argv) {
  g_argv.assign(argv, argv + argc);
  CLI::App app{"tame: likelihood-based deep generative models of images"};
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("tame ") + TAME_VERSION + " (malloc: " + allocator_name() + ")");
  add_train(app);
  add_eval(app);
  add_sample(app);
  add_info(app);
  add_compress(app);
  add_decompress(app);
  add_baselines(app);
  add_reconstruct(app);
  add_classifier(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tame: error: %s\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "tame: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tame: error: %s\n", first_line(e).c_str());
    return 1;
  }
  return g_exit_code;
}

}  // namespace tame::cli
