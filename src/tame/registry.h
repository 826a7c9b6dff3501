// The one place that knows every model's name. The CLI, the tests, the
// benchmarks and `tame models` all read this table, so a new model appears
// everywhere at once. Defaults live next to each model, in its options struct.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tame/models/image_model.h"

namespace tame {

struct ModelEntry {
  std::string name;
  std::string family;   // "autoregressive", "flow", "latent", "gan"
  std::string summary;  // one line: the paper and the architecture
  nlohmann::json defaults;
  /// What each hyper-parameter does, by key (the options struct's help()):
  /// what `tame models` prints beside each default.
  nlohmann::json help = nlohmann::json::object();
  /// Overrides of `defaults` for the smallest model that still runs every
  /// layer the defaults run: what the registry smoke test trains, resumes,
  /// evaluates, samples (and codes) in seconds. Each entry says why it is small.
  nlohmann::json tiny;
  /// Whether `tame compress` can code images with a trained model (its
  /// coder()): the model class's kCodec.
  bool codec = false;
  /// The values that hyper-parameters added after a model's first runs take
  /// in a run stored without them (the options struct's earlier(), if any):
  /// such a run keeps loading as the model it was.
  nlohmann::json earlier = nlohmann::json::object();
  std::function<std::shared_ptr<ImageModel>(const nlohmann::json& hparams, ImageShape,
                                            int64_t levels)>
      make;
};

const std::vector<ModelEntry>& model_registry();
/// Adds a model defined outside tame (a library user's own family) to the
/// registry, so that train(), evaluate() and the run files know it by name;
/// a name already taken is an Error.
void register_model(ModelEntry entry);
const ModelEntry& find_model(const std::string& name);  // Error listing the known names

/// The defaults of `name` with `overrides` applied; an unknown key or a value
/// of the wrong type is an Error.
nlohmann::json resolve_hparams(const std::string& name, const nlohmann::json& overrides);
/// A stored run's hyper-parameters `hp` completed with the entry's `earlier`
/// values for the keys it lacks (unchanged for a model not in the registry).
nlohmann::json stored_hparams(const std::string& name, nlohmann::json hp);

/// Builds a model from fully resolved hyper-parameters.
std::shared_ptr<ImageModel> make_model(const std::string& name, const nlohmann::json& hparams,
                                       ImageShape shape, int64_t levels);

/// Parses "key=value" into a JSON override (numbers, true/false, else a string).
std::pair<std::string, nlohmann::json> parse_hparam(const std::string& kv);

}  // namespace tame
