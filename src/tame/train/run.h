// A run directory: config.json (everything needed to rebuild the model and
// continue training), metrics.jsonl, checkpoint.tame and sample grids.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/models/image_model.h"

namespace tame {

struct RunConfig {
  std::string model;
  nlohmann::json hparams;  // fully resolved (defaults + overrides)
  std::string data;
  ImageShape shape;
  int64_t levels = 256;
  // Training settings (documented in `tame train --help`).
  int64_t batch_size = 64;
  double lr = 1e-3;
  std::string schedule = "cosine";  // "cosine" (to zero over --epochs / --time-limit) or "constant"
  int64_t warmup = 200;             // steps of linear learning-rate warm-up
  double clip = 1.0;                // gradient-norm clipping threshold (0 = off)
  uint64_t seed = 0;
  int64_t epochs = 10;
  double time_limit = 0;              // seconds of training in total, 0 = none
  int64_t eval_limit = 0;             // test images evaluated after each epoch, 0 = all
  bool dynamic_binarization = false;  // binarized data: fresh Bernoulli draws for every batch
  int64_t crop =
      0;  // train on random crop x crop patches (evaluate on central ones); 0 = whole images
  int64_t crops_per_image = 1;  // with crop: an epoch takes this many crops of every image
  bool flip =
      false;  // mirror each training item left-right with probability 1/2 (seed, epoch, item)
  std::string device = "cpu";
  double ema = 0;  // decay of the weights' moving average used to evaluate (0 = none)
  std::string precision = "fp32";  // the training forward's compute type: fp32 or bf16 (autocast)

  nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& j, const std::string& where);
};

std::string config_path(const std::string& run_dir);
std::string checkpoint_path(const std::string& run_dir);
std::string metrics_path(const std::string& run_dir);

/// Reads RUN_DIR/config.json; a missing run dir or corrupt file is an Error.
RunConfig read_run_config(const std::string& run_dir);
void write_run_config(const std::string& run_dir, const RunConfig& cfg);

/// The data of a run: a dataset spec (load_dataset, data/datasets.h), or
/// `codes:RUN_DIR[:STAGE]`, the split of RUN_DIR's data encoded by its trained
/// model into discrete code maps (ImageModel::encode_codes), the maps of stage
/// STAGE for a model with stages of codes (vqvae2: top, bottom; a later
/// stage's maps carry the earlier stages' codes as given channels), for
/// training a prior on them. A model without codes, a missing stage name where
/// the model has several, or an unknown one is an Error.
Dataset load_run_data(const std::string& spec, const std::string& split);
/// The given channels of the data a spec names (Dataset::given), without
/// loading it: what a codes:RUN:STAGE spec's earlier stages fix, else 0.
int64_t run_data_given(const std::string& spec);

/// Builds the model a config describes (fresh weights).
std::shared_ptr<ImageModel> build_model(const RunConfig& cfg);

/// Builds the model of a run and loads its latest checkpoint's weights, on `device`.
std::shared_ptr<ImageModel> load_trained_model(const std::string& run_dir, RunConfig* cfg_out,
                                               const std::string& device = "");

/// The model of run_dir with the priors of prior_dirs over its codes, one per
/// stage in order (ImageModel::code_stages), as one model
/// (models/latent/code_prior.h). prior_dirs[s] must have been trained on stage
/// s's codes of run_dir (`codes:run_dir`, or `codes:run_dir:STAGE`); anything
/// else, or a count other than the stages', is an Error. cfg_out gets
/// run_dir's config, its model named "MODEL+PRIOR[+PRIOR]".
std::shared_ptr<ImageModel> load_code_pair(const std::string& run_dir,
                                           const std::vector<std::string>& prior_dirs,
                                           RunConfig* cfg_out, const std::string& device = "");

/// What a command's RUN_DIR [--prior PRIOR_RUN]... names: the run's model
/// (load_trained_model), or with priors the pair (load_code_pair).
std::shared_ptr<ImageModel> load_run_model(const std::string& run_dir,
                                           const std::vector<std::string>& prior_dirs,
                                           RunConfig* cfg_out, const std::string& device = "");

}  // namespace tame
