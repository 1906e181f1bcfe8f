"""Byte tokenizer, text encoder, gated fusion, cross-attention and guidance helpers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqprior.models import guidance
from freqprior.models import heads
from freqprior.models import text
from freqprior.models import tokenizer

T = 32
WIDTH = 32


def test_layout_and_empty_prompt():
  tokens = tokenizer.tokenize(['ab', ''], 6)
  np.testing.assert_array_equal(tokens, [[256, 97, 98, 257, 258, 258],
                                         [256, 257, 258, 258, 258, 258]])
  np.testing.assert_array_equal(tokens[1:], tokenizer.null_tokens(1, 6))


def test_different_prompts_give_different_tokens():
  a, b = tokenizer.tokenize(['a handwritten digit 7', 'a handwritten digit seven'], T)
  assert not np.array_equal(a, b)


@pytest.mark.parametrize('prompt', ['ein Hündchen', '手写数字七', 'emoji 🐕 ok', 'tab\tnewline\n'])
def test_any_text_round_trips(prompt):
  tokens = tokenizer.tokenize([prompt], 64)[0]
  assert tokens.max() < tokenizer.VOCAB_SIZE
  assert tokenizer.detokenize(tokens) == prompt


def test_truncation_warns_and_keeps_whole_characters():
  with pytest.warns(UserWarning, match='truncated'):
    tokens = tokenizer.tokenize(['aé€'], 6)[0]  # 1 + 2 + 3 bytes, room for 4: '€' is dropped
  assert tokenizer.detokenize(tokens) == 'aé'
  np.testing.assert_array_equal(tokens[4:], [tokenizer.EOS, tokenizer.PAD])  # no half '€'


def test_bad_prompts():
  with pytest.raises(TypeError, match='str'):
    tokenizer.tokenize([7], T)
  with pytest.raises(ValueError, match='max_prompt_length'):
    tokenizer.tokenize(['a'], 1)


def test_load_prompts(tmp_path):
  assert tokenizer.load_prompts('a cat', '', 3) == ['a cat'] * 3
  assert tokenizer.load_prompts(['x', 'y'], '', 3) == ['x', 'y', 'x']
  path = tmp_path / 'prompts.txt'
  path.write_text('one\n\ntwo\n', encoding='utf-8')
  assert tokenizer.load_prompts('', str(path), 4) == ['one', '', 'two', 'one']
  with pytest.raises(FileNotFoundError, match='prompt_file'):
    tokenizer.load_prompts('', str(tmp_path / 'missing.txt'), 1)
  with pytest.raises(ValueError, match='not both'):
    tokenizer.load_prompts('a', str(path), 1)


class TextAndImage(text.nn.Module):
  """Encoder -> (fusion, cross-attention) on image features, as a model block uses them."""

  def setup(self):
    self.encoder = text.TextEncoder(WIDTH, depth=2, num_heads=4)
    self.fusion = text.GatedFusion()
    self.cross = text.CrossAttention(num_heads=4)

  def __call__(self, h_BxF, tokens_BT):
    features = self.encoder(tokens_BT)
    return self.cross(self.fusion(h_BxF, features.pooled_BD), features)


@pytest.fixture(scope='module')
def model():
  module = TextAndImage()
  h = jnp.zeros((1, 4, 4, WIDTH))
  params = module.init(jax.random.key(0), h, jnp.asarray(tokenizer.tokenize([''], T)))
  apply = jax.jit(lambda h, tokens: module.apply(params, h, tokens))
  encode = jax.jit(lambda tokens: module.apply(params, tokens, method=lambda m, t: m.encoder(t)))
  return apply, encode, params, module


def image_features(batch=1):
  return jax.random.normal(jax.random.key(1), (batch, 4, 5, WIDTH))


def run(model, prompts, length=T):
  apply = model[0]
  h = image_features(len(prompts))
  return np.asarray(apply(h, jnp.asarray(tokenizer.tokenize(prompts, length))))


def test_padding_changes_nothing(model):
  prompt = 'a handwritten digit 7'
  short, long = run(model, [prompt], T), run(model, [prompt], 2 * T)
  np.testing.assert_allclose(short, long, rtol=0, atol=1e-5)
  encode = model[1]
  a = encode(jnp.asarray(tokenizer.tokenize([prompt], T)))
  b = encode(jnp.asarray(tokenizer.tokenize([prompt], 2 * T)))
  n = len(prompt) + 2
  np.testing.assert_allclose(a.tokens_BTD[:, :n], b.tokens_BTD[:, :n], rtol=0, atol=1e-5)
  np.testing.assert_allclose(a.pooled_BD, b.pooled_BD, rtol=0, atol=1e-5)


def test_one_token_changes_the_output_everywhere(model):
  a, b = run(model, ['a handwritten digit 7', 'a handwritten digit 1'])[:, None]
  assert (np.abs(a - b).max(-1) > 1e-4).all()  # at every image position


def test_encoder_is_bidirectional(model):
  """Changing only the last word moves the first token's features: attention spans the prompt."""
  encode = model[1]
  out = encode(jnp.asarray(tokenizer.tokenize(['a handwritten digit seven',
                                               'a handwritten digit eight'], T)))
  assert np.abs(np.asarray(out.tokens_BTD[0, 0] - out.tokens_BTD[1, 0])).max() > 1e-4


def test_cross_attention_reads_every_prompt_token_and_no_padding():
  """Perturbing one token's encoder features changes the output iff that token is not padding."""
  cross = text.CrossAttention(num_heads=4)
  tokens_BTD = jax.random.normal(jax.random.key(2), (1, 10, 16))
  mask_BT = jnp.arange(10)[None] < 7
  h = jax.random.normal(jax.random.key(3), (1, 3, 3, WIDTH))
  params = cross.init(jax.random.key(0), h, text.TextFeatures(tokens_BTD, mask_BT, None))
  apply = jax.jit(lambda t: cross.apply(params, h, text.TextFeatures(t, mask_BT, None)))
  base = np.asarray(apply(tokens_BTD))
  for t in range(10):
    change = np.abs(np.asarray(apply(tokens_BTD.at[0, t].add(3.0))) - base).max()
    assert (change > 1e-4) if t < 7 else (change == 0.0), (t, change)


def test_fusion_and_cross_attention_act_per_position(model):
  """One pixel or one row gives what the whole image gives there: nothing mixes positions."""
  apply = model[0]
  h = image_features(2)
  tokens = jnp.asarray(tokenizer.tokenize(['a digit 3', 'zero'], T))
  full = np.asarray(apply(h, tokens))
  np.testing.assert_allclose(np.asarray(apply(h[:, 2], tokens)), full[:, 2], rtol=0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(apply(h[:, 2, 3], tokens)), full[:, 2, 3],
                             rtol=0, atol=1e-6)


def test_fusion_gate_depends_on_the_prompt_only():
  fusion = text.GatedFusion()
  e = jax.random.normal(jax.random.key(0), (2, 16))
  h1, h2 = jax.random.normal(jax.random.key(1), (2, 2, 3, 3, WIDTH))
  params = fusion.init(jax.random.key(2), h1, e)
  delta1 = fusion.apply(params, h1, e) - h1
  delta2 = fusion.apply(params, h2, e) - h2
  np.testing.assert_allclose(delta1, delta2, rtol=0, atol=1e-6)
  np.testing.assert_allclose(delta1, jnp.broadcast_to(delta1[:, :1, :1], delta1.shape),
                             rtol=0, atol=1e-6)
  assert np.abs(np.asarray(delta1[0] - delta1[1])).max() > 1e-4


@pytest.mark.parametrize('rate', [0.0, 0.1, 0.5])
def test_null_input_dropout_rate(rate):
  n, num_classes = 20000, 10
  labels = jnp.arange(n) % num_classes
  tokens = jnp.asarray(tokenizer.tokenize(['seven'], T)).repeat(n, 0)
  new_labels, new_tokens, dropped = guidance.drop_conditioning(jax.random.key(0), rate, labels,
                                                               tokens, num_classes)
  dropped = np.asarray(dropped)
  assert abs(dropped.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n) + 1e-9
  np.testing.assert_array_equal(np.asarray(new_labels)[dropped], num_classes)
  np.testing.assert_array_equal(np.asarray(new_labels)[~dropped], np.asarray(labels)[~dropped])
  null = tokenizer.null_tokens(1, T)[0]
  assert (np.asarray(new_tokens)[dropped] == null).all()
  assert (np.asarray(new_tokens)[~dropped] == np.asarray(tokens)[~dropped]).all()


def test_dropout_without_labels_or_with_a_bad_rate():
  tokens = jnp.asarray(tokenizer.tokenize(['a'] * 64, T))
  labels, new_tokens, dropped = guidance.drop_conditioning(jax.random.key(1), 0.5, None, tokens, 0)
  assert labels is None and 0 < int(dropped.sum()) < 64
  with pytest.raises(ValueError, match='cond_dropout'):
    guidance.drop_conditioning(jax.random.key(1), 1.0, None, tokens, 0)


def test_unconditional_half_is_the_null_label_and_the_empty_prompt():
  tokens = jnp.asarray(tokenizer.tokenize(['a cat', 'seven'], T))
  keys = jax.random.split(jax.random.key(0), 2)
  keys2, labels2, tokens2 = guidance.with_unconditional_half(keys, jnp.array([3, 4]), tokens, 10)
  assert keys2.shape == (4,) and tokens2.dtype == tokens.dtype
  np.testing.assert_array_equal(labels2, [3, 4, 10, 10])
  np.testing.assert_array_equal(tokens2[:2], tokens)
  np.testing.assert_array_equal(tokens2[2:], tokenizer.null_tokens(2, T))
  np.testing.assert_array_equal(tokenizer.null_tokens(1, 4), [[tokenizer.BOS, tokenizer.EOS,
                                                              tokenizer.PAD, tokenizer.PAD]])


def test_guided_logits():
  cond, uncond = jax.random.normal(jax.random.key(0), (2, 3, 256))
  assert guidance.guided_logits(cond, uncond, 1.0) is cond
  np.testing.assert_allclose(guidance.guided_logits(cond, uncond, 0.0), uncond, atol=1e-6)
  np.testing.assert_allclose(guidance.guided_logits(cond, uncond, 3.0),
                             3 * cond - 2 * uncond, atol=1e-5)


@pytest.mark.parametrize('head', ['categorical', 'logistic_mixture'])
def test_subpixel_log_probs_are_the_heads_distribution(head):
  """Normalised over the 256 values, equal to the head's score of the actual value, and blind to
  the pixel's later channels."""
  module = (heads.CategoricalHead(3, 16) if head == 'categorical'
            else heads.LogisticMixtureHead(3, 4, 16))
  features_BF = jax.random.normal(jax.random.key(0), (2, 8))
  pixel_BC = jnp.array([[10, 200, 30], [255, 0, 128]], jnp.uint8)
  params = module.init(jax.random.key(1), features_BF[:, None, None], pixel_BC[:, None, None])
  apply = lambda f, x: module.apply(params, f, x)
  actual_BC = apply(features_BF[:, None, None], pixel_BC[:, None, None])[:, 0, 0]
  for c in range(3):
    logp_BK = guidance.subpixel_log_probs(apply, features_BF, pixel_BC, c)
    np.testing.assert_allclose(jax.nn.logsumexp(logp_BK, -1), 0.0, atol=1e-4)
    np.testing.assert_allclose(logp_BK[jnp.arange(2), pixel_BC[:, c]], actual_BC[:, c], atol=1e-5)
    later = pixel_BC.at[:, c:].set(7)  # channel c itself is replaced by every value anyway
    np.testing.assert_array_equal(guidance.subpixel_log_probs(apply, features_BF, later, c),
                                  logp_BK)
