#include "tame/registry.h"

#include "tame/models/autoregressive/fvsbn.h"
#include "tame/models/autoregressive/gated_pixelcnn.h"
#include "tame/models/autoregressive/made.h"
#include "tame/models/autoregressive/nade.h"
#include "tame/models/autoregressive/pixelcnn.h"
#include "tame/models/autoregressive/pixelcnn_pp.h"
#include "tame/models/autoregressive/pixelrnn.h"
#include "tame/models/autoregressive/transformer.h"
#include "tame/models/flows/glow.h"
#include "tame/models/flows/nice.h"
#include "tame/models/flows/realnvp.h"
#include "tame/models/gan/dcgan.h"
#include "tame/models/latent/gumbel_vae.h"
#include "tame/models/latent/vae.h"
#include "tame/models/latent/vae2.h"
#include "tame/models/latent/vlae.h"
#include "tame/models/latent/vqgan.h"
#include "tame/models/latent/vqvae.h"
#include "tame/models/latent/vqvae2.h"

namespace tame {
namespace {

// `iwae` and `iwae2`: the options of `vae` and `vae2` with the k-sample
// objective on by default.
template <class Base>
struct KSampleOptions : Base {
  KSampleOptions() { this->k = 5; }
};
template <class Base>
void to_json(nlohmann::json& j, const KSampleOptions<Base>& o) {
  to_json(j, static_cast<const Base&>(o));
}
template <class Base>
void from_json(const nlohmann::json& j, KSampleOptions<Base>& o) {
  from_json(j, static_cast<Base&>(o));
}

template <class T, class = void>
struct HasEarlier : std::false_type {};
template <class T>
struct HasEarlier<T, std::void_t<decltype(T::earlier())>> : std::true_type {};

template <class Options, class Model>
ModelEntry entry(std::string name, std::string family, std::string summary, nlohmann::json tiny) {
  ModelEntry e;
  e.name = std::move(name);
  e.family = std::move(family);
  e.summary = std::move(summary);
  e.defaults = Options();
  e.help = Options::help();
  e.tiny = std::move(tiny);
  if constexpr (HasEarlier<Options>::value) e.earlier = Options::earlier();
  // What the class says of its coder() (the registry test checks it).
  e.codec = Model::kCodec;
  e.make = [](const nlohmann::json& hp, ImageShape shape,
              int64_t levels) -> std::shared_ptr<ImageModel> {
    return std::make_shared<Model>(hp.get<Options>(), shape, levels);
  };
  return e;
}

}  // namespace

namespace {

// Each entry's `tiny` overrides keep every layer kind of the defaults at the
// least width and depth (see ModelEntry::tiny); kernels stay at their defaults,
// which cost nothing on 8x8 images. Widths are multiples of 6 where the masks
// split features by colour, so that the tiny models also take RGB images.
std::vector<ModelEntry> autoregressive_entries() {
  return {
      entry<FvsbnOptions, Fvsbn>("fvsbn", "autoregressive",
                                 "FVSBN (Frey 1998): a logistic regression per sub-pixel on every "
                                 "earlier one; K-way softmax of rank-r linear logits for K > 2",
                                 // the least rank keeps the low-rank path of 8-bit images
                                 {{"rank", 1}}),
      entry<NadeOptions, Nade>("nade", "autoregressive",
                               "NADE (Larochelle & Murray 2011): one hidden layer shared by every "
                               "conditional, O(HD) per image",
                               {{"hidden", 2}}),
      entry<MadeOptions, Made>("made", "autoregressive",
                               "MADE (Germain et al. 2015): masked MLP, connectivity from a seed, "
                               "an ensemble of masks=M draws",
                               // two layers and two draws run the deepest masks and the mixture
                               {{"hidden", 4}, {"layers", 2}, {"masks", 2}}),
      entry<PixelCNNOptions, PixelCNN>("pixelcnn", "autoregressive",
                                       "PixelCNN (van den Oord et al. 2016): 7x7 mask-A input, "
                                       "mask-B residual blocks, K-way softmax",
                                       // one residual block runs mask A, mask B and the head
                                       {{"hidden", 6}, {"blocks", 1}, {"out_hidden", 6}}),
      entry<GatedPixelCNNOptions, GatedPixelCNN>(
          "gated-pixelcnn", "autoregressive",
          "Gated PixelCNN (van den Oord et al. 2016): vertical + horizontal gated stacks, no blind "
          "spot",
          // the input layer and one later gated layer: both kinds of layer
          {{"hidden", 6}, {"layers", 1}, {"out_hidden", 6}}),
      entry<PixelRNNOptions, PixelRNN>(
          "pixelrnn", "autoregressive",
          "PixelRNN (van den Oord et al. 2016): 7x7 mask-A input, residual Row LSTM or Diagonal "
          "BiLSTM layers (layer=), K-way softmax; cached steps keep two rows of states",
          // one layer runs the input, an LSTM and the head; the Row LSTM (the
          // default) here, the Diagonal BiLSTM in the model tests
          {{"hidden", 6}, {"layers", 1}, {"out_hidden", 6}}),
      entry<PixelCnnPPOptions, PixelCnnPP>(
          "pixelcnn++", "autoregressive",
          "PixelCNN++ (Salimans et al. 2017): discretized logistic mixture with R->G->B mean "
          "coupling, down and down-right shifted streams of gated resnets over three "
          "resolutions with skips; cached steps run each resolution once per image",
          // one block per resolution and two components run every layer kind
          {{"filters", 4}, {"resnets", 1}, {"mixtures", 2}}),
      entry<TransformerOptions, Transformer>(
          "transformer", "autoregressive",
          "causal transformer (Vaswani et al. 2017; the VQGAN prior of Esser et al. 2021) over "
          "the sub-pixel sequence, KV-cached steps; for code maps and small images",
          // two heads of width 2 run the head split; two blocks chain their caches
          {{"width", 4}, {"layers", 2}, {"heads", 2}, {"mlp", 4}}),
  };
}

std::vector<ModelEntry> flow_entries() {
  return {
      entry<NiceOptions, Nice>(
          "nice", "flow",
          "NICE (Dinh et al. 2014): additive couplings + diagonal scale; uniform or variational "
          "dequantization",
          // two couplings change both halves; uniform dequantization (realnvp and glow
          // run the variational one)
          {{"couplings", 2}, {"hidden", 4}}),
      entry<RealNvpOptions, RealNvp>(
          "realnvp", "flow",
          "RealNVP (Dinh et al. 2016): affine couplings, squeeze, multi-scale factoring-out; "
          "uniform or variational dequantization",
          // two scales are the least with a squeeze and a factored-out half; one
          // coupling of q(u|x)
          {{"scales", 2},
           {"hidden", 4},
           {"dequantization", "variational"},
           {"deq_couplings", 1},
           {"deq_hidden", 4}}),
      entry<GlowOptions, Glow>("glow", "flow",
                               "Glow (Kingma & Dhariwal 2018): ActNorm, LU 1x1 convolution, "
                               "affine coupling, learned prior on factored-out variables; "
                               "uniform or variational dequantization",
                               // two levels are the least with a split and its learned prior;
                               // one step per level holds ActNorm, the 1x1 and a coupling
                               {{"levels", 2},
                                {"steps", 1},
                                {"hidden", 4},
                                {"dequantization", "variational"},
                                {"deq_couplings", 1},
                                {"deq_hidden", 4}}),
  };
}

std::vector<ModelEntry> latent_and_gan_entries() {
  return {
      entry<VaeOptions, Vae>("vae", "latent",
                             "VAE (Kingma & Welling 2013): conv encoder/decoder, Gaussian latent; "
                             "pathwise or score-function gradients; --set beta for the beta-VAE",
                             // the conv networks have a fixed depth; two latent units
                             {{"latent", 2}, {"hidden", 4}}),
      entry<KSampleOptions<VaeOptions>, Vae>(
          "iwae", "latent",
          "IWAE (Burda et al. 2015): the VAE's networks trained on the "
          "k-sample importance-weighted bound (--set k)",
          // k = 2 is the least k that runs the k-sample objective; the
          // logistic likelihood runs the third pixel type
          {{"latent", 2}, {"hidden", 4}, {"k", 2}, {"likelihood", "logistic"}}),
      entry<Vae2Options, Vae2>("vae2", "latent",
                               "VAE with two stochastic layers (Burda et al. 2015's second "
                               "architecture): MLPs x <-> z1 <-> z2, Gaussian z1 given z2",
                               // one unit per layer and width keeps every network
                               {{"latent1", 1}, {"latent2", 1}, {"hidden1", 2}, {"hidden2", 2}}),
      entry<KSampleOptions<Vae2Options>, Vae2>(
          "iwae2", "latent",
          "IWAE with two stochastic layers (Burda et al. 2015): vae2 "
          "trained on the k-sample bound (--set k)",
          {{"latent1", 1},
           {"latent2", 1},
           {"hidden1", 2},
           {"hidden2", 2},
           {"k", 2},
           {"likelihood", "logistic"}}),
      entry<VlaeOptions, Vlae>(
          "vlae", "latent",
          "VLAE (Chen et al. 2016): VAE with a small-receptive-field PixelCNN "
          "decoder conditioned on z",
          // one mask-B layer after the input keeps the conditioned stack
          {{"latent", 2}, {"hidden", 4}, {"pixel_hidden", 2}, {"pixel_layers", 1}}),
      entry<GumbelVaeOptions, GumbelVae>(
          "gumbel-vae", "latent",
          "Gumbel-softmax VAE (Jang et al. 2016): categorical latents, annealed relaxation, "
          "optional straight-through",
          // two binary latents are the least that are still categorical and grouped
          {{"groups", 2}, {"classes", 2}, {"hidden", 4}}),
      entry<VqVaeOptions, VqVae>(
          "vqvae", "latent",
          "VQ-VAE (van den Oord et al. 2017): conv encoder to a code map quantized to a learned "
          "codebook, straight-through gradient; a prior is a second run on codes:RUN",
          // one residual block each way keeps the block; four entries let restarts find unused
          // ones; the moving averages (the default) run
          {{"codes", 4}, {"code_dim", 2}, {"hidden", 4}, {"res_blocks", 1}, {"restart", 2}}),
      entry<VqVae2Options, VqVae2>(
          "vqvae2", "latent",
          "VQ-VAE-2 (Razavi et al. 2019): top and bottom code maps (H/4, H/2), the decoder "
          "reading both; priors on codes:RUN:top (transformer) then codes:RUN:bottom (a "
          "gated-pixelcnn given the top codes)",
          // vqvae's tiny size for both levels
          {{"codes", 4}, {"code_dim", 2}, {"hidden", 4}, {"res_blocks", 1}, {"restart", 2}}),
      entry<VqGanOptions, VqGan>(
          "vqgan", "latent",
          "VQGAN (Esser et al. 2021): the VQ-VAE autoencoder with a perceptual loss (a classifier "
          "file) and a patch discriminator under the adaptive weight; a transformer prior on "
          "codes:RUN",
          // vqvae's tiny size; the discriminator's step from the second step on
          {{"codes", 4},
           {"code_dim", 2},
           {"hidden", 4},
           {"res_blocks", 1},
           {"restart", 2},
           {"disc_hidden", 2},
           {"disc_start", 1}}),
      entry<DcganOptions, Dcgan>("dcgan", "gan",
                                 "DCGAN (Radford et al. 2015): conv generator and discriminator, "
                                 "non-saturating loss, an Adam each; no likelihood",
                                 // both networks keep their two convolutions and batch norms
                                 {{"latent", 4}, {"hidden", 2}}),
  };
}

std::vector<ModelEntry>& registry() {
  static std::vector<ModelEntry> models = [] {
    std::vector<ModelEntry> all;
    for (auto family : {autoregressive_entries, flow_entries, latent_and_gan_entries})
      for (auto& e : family()) all.push_back(std::move(e));
    return all;
  }();
  return models;
}

}  // namespace

const std::vector<ModelEntry>& model_registry() { return registry(); }

void register_model(ModelEntry entry) {
  for (const auto& e : registry())
    if (e.name == entry.name)
      throw Error("a model named '" + entry.name + "' is already registered");
  registry().push_back(std::move(entry));
}

const ModelEntry& find_model(const std::string& name) {
  std::string known;
  for (const auto& e : model_registry()) {
    if (e.name == name) return e;
    known += (known.empty() ? "" : ", ") + e.name;
  }
  throw Error("unknown model '" + name + "' (known: " + known + ")");
}

nlohmann::json resolve_hparams(const std::string& name, const nlohmann::json& overrides) {
  const auto& e = find_model(name);
  nlohmann::json hp = e.defaults;
  if (!overrides.is_null()) {
    for (auto it = overrides.begin(); it != overrides.end(); ++it) {
      if (!hp.contains(it.key())) {
        std::string keys;
        for (auto k = hp.begin(); k != hp.end(); ++k) keys += (keys.empty() ? "" : ", ") + k.key();
        throw Error("model " + name + " has no hyper-parameter '" + it.key() +
                    "' (it has: " + keys + ")");
      }
      const auto& def = hp[it.key()];
      const auto& val = it.value();
      bool ok = (def.is_number_integer() && val.is_number_integer()) ||
                (def.is_number_float() && val.is_number()) ||
                (def.is_boolean() && val.is_boolean()) || (def.is_string() && val.is_string());
      if (!ok)
        throw Error("hyper-parameter " + it.key() + "=" + val.dump() + ": expected a value like " +
                    def.dump());
      hp[it.key()] = val;
    }
  }
  return hp;
}

nlohmann::json stored_hparams(const std::string& name, nlohmann::json hp) {
  for (const auto& e : model_registry()) {
    if (e.name != name) continue;
    if (hp.is_object())
      for (auto it = e.earlier.begin(); it != e.earlier.end(); ++it)
        if (!hp.contains(it.key())) hp[it.key()] = it.value();
    break;
  }
  return hp;
}

std::shared_ptr<ImageModel> make_model(const std::string& name, const nlohmann::json& hparams,
                                       ImageShape shape, int64_t levels) {
  const auto& e = find_model(name);
  try {
    return e.make(resolve_hparams(name, hparams), shape, levels);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& ex) {
    throw Error(name + ": " + first_line(ex));
  }
}

std::pair<std::string, nlohmann::json> parse_hparam(const std::string& kv) {
  auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("expected KEY=VALUE, got '" + kv + "'");
  std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(val);
  } catch (const nlohmann::json::exception&) {
    j = val;  // a bare string
  }
  return {key, j};
}

}  // namespace tame
