// tame models, tame data
#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/data/datasets.h"
#include "tame/registry.h"

namespace tame::cli {

void add_info(CLI::App& app) {
  auto* m = app.add_subcommand(
      "models", "list the models, their default hyper-parameters and what each does");
  auto json = std::make_shared<bool>(false);
  m->add_flag("--json", *json, "print one JSON array, an object per model");
  m->callback([json] {
    if (*json) {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& e : model_registry())
        all.push_back({{"name", e.name},
                       {"family", e.family},
                       {"summary", e.summary},
                       {"defaults", e.defaults},
                       {"help", e.help},
                       {"tiny", e.tiny},
                       {"codec", e.codec}});
      std::printf("%s\n", all.dump(2).c_str());
      return;
    }
    for (const auto& e : model_registry()) {
      std::printf("%-16s %s\n", e.name.c_str(), e.summary.c_str());
      for (auto it = e.defaults.begin(); it != e.defaults.end(); ++it) {
        const std::string kv = it.key() + "=" + it.value().dump();
        std::printf("%-16s   %-26s %s\n", "", kv.c_str(),
                    e.help.value(it.key(), std::string()).c_str());
      }
    }
    std::printf("\nOverride a default with --set KEY=VALUE on `tame train`.\n");
  });
  auto* d = app.add_subcommand("data", "list the datasets and where each was found");
  d->callback([] {
    for (const auto& i : list_datasets()) {
      if (i.train_size > 0)
        std::printf("%-18s %-9s K=%-3lld train %-6lld test %-6lld %s\n", i.name.c_str(),
                    i.shape.str().c_str(), (long long)i.levels, (long long)i.train_size,
                    (long long)i.test_size, i.location.c_str());
      else
        std::printf("%-18s %-9s %s: %s\n", i.name.c_str(),
                    i.available ? i.shape.str().c_str() : "-", i.description.c_str(),
                    i.location.c_str());
    }
  });
}

}  // namespace tame::cli
