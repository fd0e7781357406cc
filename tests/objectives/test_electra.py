"""ELECTRA: shared embeddings, replaced-token labels, the two loss terms on hand-made batches, save/resume."""

from __future__ import annotations

import pytest
import torch

from nlp_ssl.modeling import ModelConfig
from nlp_ssl.objectives.electra import ElectraPretrainer, build_models, electra_configs, generator_dims
from nlp_ssl.objectives.registry import ElectraObjectiveConfig, ObjectiveConfig

TINY = ModelConfig(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64, max_position_embeddings=64)


class Tok:  # the three things electra_configs reads from a tokenizer
    pad_token_id = 0

    def __len__(self):
        return 50


def tiny(width=0.25, layers=None, weight=50.0) -> ElectraPretrainer:
    torch.manual_seed(0)
    return build_models(TINY, ObjectiveConfig(task="electra", electra=ElectraObjectiveConfig(
        generator_width=width, generator_layers=layers, loss_weight=weight)), Tok())


def test_generator_dims_follow_the_width():
    assert generator_dims(256, 4, 1024, 0.25) == (64, 1, 256)
    assert generator_dims(768, 12, 3072, 1 / 3) == (256, 4, 1024)
    assert generator_dims(32, 2, 64, 0.25) == (8, 1, 16)
    disc, gen = electra_configs(TINY, ElectraObjectiveConfig(generator_width=0.5, generator_layers=1), Tok())
    assert (disc.hidden_size, disc.num_hidden_layers, gen.hidden_size, gen.num_hidden_layers) == (32, 2, 16, 1)
    assert disc.embedding_size == gen.embedding_size == 32 and disc.vocab_size == gen.vocab_size == 50


def test_embeddings_are_one_set_of_parameters_trained_by_both_losses():
    m = tiny()
    ge, de = m.generator.electra.embeddings, m.discriminator.electra.embeddings
    assert ge is de
    assert m.generator.generator_lm_head.weight is de.word_embeddings.weight  # output layer tied to shared table
    shared = {id(p) for p in ge.parameters()}
    assert shared <= {id(p) for p in m.discriminator.parameters()}
    n_params = sum(p.numel() for p in m.parameters())  # a shared tensor counts once
    assert n_params == (sum(p.numel() for p in m.discriminator.parameters())
                        + sum(p.numel() for n, p in m.generator.named_parameters() if not n.startswith("electra.embeddings.")))
    ids = torch.randint(5, 50, (2, 10))
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    ids_in = ids.clone()
    ids_in[:, 3] = 4  # [MASK]
    out = m(ids_in, labels)
    table = de.word_embeddings.weight
    # each loss alone sends gradient into the shared token embeddings
    g_gen = torch.autograd.grad(out.generator_loss, table, retain_graph=True)[0]
    g_disc = torch.autograd.grad(out.discriminator_loss, table, retain_graph=True)[0]
    assert g_gen.abs().sum() > 0 and g_disc.abs().sum() > 0
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    before = table.detach().clone()
    out.loss.backward()
    opt.step()
    assert not torch.equal(before, table)
    assert m.generator.electra.embeddings.word_embeddings.weight.data_ptr() == table.data_ptr()
    assert m.generator.generator_lm_head.weight.data_ptr() == table.data_ptr()


def test_discriminator_labels_mark_tokens_that_differ_from_the_original(monkeypatch):
    m = tiny()
    original = torch.tensor([[2, 10, 11, 12, 13, 3]])
    inputs = torch.tensor([[2, 4, 11, 4, 4, 3]])  # positions 1, 3, 4 masked
    labels = torch.tensor([[-100, 10, -100, 12, 13, -100]])
    # the generator "samples" 10 (= original), 20 (replaced), 13 (= original) at the masked positions
    monkeypatch.setattr(m, "sample", lambda logits: torch.tensor([10, 20, 13]))
    out = m(inputs, labels)
    assert out.discriminator_labels.tolist() == [[0, 0, 0, 1, 0, 0]]
    assert out.generator_logits.shape == (3, 50)  # the generator head ran on the 3 masked positions only
    # padding is no token: label -100 and no loss
    out = m(inputs, labels, attention_mask=torch.tensor([[1, 1, 1, 1, 1, 0]]))
    assert out.discriminator_labels.tolist() == [[0, 0, 0, 1, 0, -100]]


def test_loss_is_generator_mlm_plus_weighted_discriminator_bce(monkeypatch):
    m = tiny(weight=50.0).eval()
    inputs = torch.tensor([[2, 4, 11, 4, 4, 3], [2, 15, 4, 17, 18, 3]])
    labels = torch.tensor([[-100, 10, -100, 12, 13, -100], [-100, -100, 16, -100, -100, -100]])
    sampled = torch.tensor([10, 20, 13, 30])
    monkeypatch.setattr(m, "sample", lambda logits: sampled)
    out = m(inputs, labels)
    # generator: the stock ElectraForMaskedLM loss (dense head, -100 ignored) equals our sparse one
    ref_gen = m.generator(input_ids=inputs, labels=labels).loss
    corrupted = torch.tensor([[2, 10, 11, 20, 13, 3], [2, 15, 30, 17, 18, 3]])
    replaced = torch.tensor([[0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0]])
    ref_disc = m.discriminator(input_ids=corrupted, labels=replaced).loss  # stock BCE over every token
    assert out.generator_loss.item() == pytest.approx(ref_gen.item(), rel=1e-5)
    assert out.discriminator_loss.item() == pytest.approx(ref_disc.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(ref_gen.item() + 50 * ref_disc.item(), rel=1e-5)


def test_sampling_follows_the_generator_distribution():
    m = tiny()
    m.sampling_generator = torch.Generator().manual_seed(0)
    logits = torch.full((4000, 50), -1e4)
    logits[:, 7] = 0.0
    logits[:, 9] = 0.0  # two equally likely tokens
    s = m.sample(logits)
    assert set(s.tolist()) == {7, 9} and abs((s == 7).float().mean().item() - 0.5) < 0.05  # ~6 sigma


def test_save_and_resume_round_trip(tmp_path):
    m = tiny()
    m.save_pretrained(str(tmp_path / "ck"))
    fresh = tiny(width=0.25)
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)
    fresh.load_checkpoint(str(tmp_path / "ck"))
    a, b = m.state_dict(), fresh.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert fresh.generator.electra.embeddings is fresh.discriminator.electra.embeddings
    assert fresh.generator.generator_lm_head.weight is fresh.discriminator.electra.embeddings.word_embeddings.weight


def test_evaluation_samples_the_same_replacements_for_the_same_weights_and_leaves_the_global_rng_alone():
    """The validation set is masked once so that every evaluation scores the same thing; the replacements the
    generator samples must then not depend on the global RNG (which training also draws from)."""
    m = tiny().eval()
    ids = torch.randint(5, 50, (4, 12))
    labels = torch.full_like(ids, -100)
    labels[:, 2:8] = ids[:, 2:8]
    inputs = ids.clone()
    inputs[:, 2:8] = 4
    torch.manual_seed(1)
    first = m(inputs, labels)
    state = torch.get_rng_state()
    torch.manual_seed(2)
    second = m(inputs, labels)
    assert torch.equal(first.discriminator_labels, second.discriminator_labels)
    assert first.discriminator_loss.item() == second.discriminator_loss.item()
    torch.set_rng_state(state)
    m(inputs, labels)
    assert torch.equal(torch.get_rng_state(), state)  # evaluation draws nothing from the training stream
    # training still samples from the global stream: two draws differ
    m.train()
    a, b = m(inputs, labels).discriminator_labels, m(inputs, labels).discriminator_labels
    assert not torch.equal(a, b)


def test_discriminator_loss_sends_no_gradient_into_the_generator_through_the_sampling():
    m = tiny()
    ids = torch.randint(5, 50, (2, 10))
    labels = torch.full_like(ids, -100)
    labels[:, 2:6] = ids[:, 2:6]
    inputs = ids.clone()
    inputs[:, 2:6] = 4
    out = m(inputs, labels)
    own = [p for n, p in m.generator.named_parameters() if not n.startswith("electra.embeddings.")]
    grads = torch.autograd.grad(out.discriminator_loss, own, allow_unused=True)
    assert all(g is None or not g.abs().sum() for g in grads)
    grads = torch.autograd.grad(out.generator_loss, own, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


# --- ModernBERT layers ------------------------------------------------------------------------------------
MODERN = ModelConfig(arch="modernbert", num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64,
                     max_position_embeddings=64)


class ModernTok(Tok):  # ModernBertConfig also reads the [CLS] / [SEP] ids
    cls_token_id, sep_token_id = 2, 3


def modern(weight=50.0):
    torch.manual_seed(0)
    return build_models(MODERN, ObjectiveConfig(task="electra", electra=ElectraObjectiveConfig(loss_weight=weight)),
                        ModernTok())


def masked_batch():
    ids = torch.randint(5, 50, (2, 10))
    labels = torch.full_like(ids, -100)
    labels[:, 2:5] = ids[:, 2:5]
    inputs = ids.clone()
    inputs[:, 2:5] = 4
    return inputs, labels


def test_modernbert_generator_reads_and_writes_the_discriminator_token_table_through_a_map():
    from nlp_ssl.objectives.electra import ModernBertElectraPretrainer, ProjectedEmbedding, TiedDecoder

    m = modern()
    assert isinstance(m, ModernBertElectraPretrainer)
    emb = m.generator.model.embeddings.tok_embeddings
    table = m.discriminator.model.embeddings.tok_embeddings.weight
    assert isinstance(emb, ProjectedEmbedding) and emb.shared.weight is table
    assert isinstance(m.generator.decoder, TiedDecoder) and m.generator.decoder.embedding is emb
    assert (m.generator.config.hidden_size, m.generator.config.num_attention_heads) == (8, 1)  # 1/4 width
    assert emb.proj.weight.shape == (8, 32)
    n_params = sum(p.numel() for p in m.parameters())  # the shared table counts once; the decoder owns a bias only
    assert n_params == sum(p.numel() for p in m.discriminator.parameters()) + \
        sum(p.numel() for n, p in m.generator.named_parameters() if "tok_embeddings.shared" not in n)
    assert {n for n, _ in m.generator.decoder.named_parameters()} == {"bias"}
    inputs, labels = masked_batch()
    out = m(inputs, labels)
    g_gen = torch.autograd.grad(out.generator_loss, table, retain_graph=True)[0]
    g_disc = torch.autograd.grad(out.discriminator_loss, table, retain_graph=True)[0]
    assert g_gen.abs().sum() > 0 and g_disc.abs().sum() > 0  # both losses train the one table
    # the tied output layer: the generator's softmax trains rows of tokens that appear nowhere in the batch
    absent = sorted(set(range(5, 50)) - set(inputs.flatten().tolist()) - set(labels.flatten().tolist()))
    assert absent and (g_gen[absent].abs().sum(-1) > 0).all()
    assert out.generator_logits.shape == (6, 50)  # the generator's head ran on the 6 masked positions only


def test_modernbert_labels_and_loss_terms_by_hand(monkeypatch):
    import torch.nn.functional as F

    m = modern(weight=50.0).eval()
    inputs = torch.tensor([[2, 4, 11, 4, 4, 3], [2, 15, 4, 17, 18, 3]])
    labels = torch.tensor([[-100, 10, -100, 12, 13, -100], [-100, -100, 16, -100, -100, -100]])
    monkeypatch.setattr(m, "sample", lambda logits: torch.tensor([10, 20, 13, 30]))  # 10 and 13 = the originals
    out = m(inputs, labels)
    replaced = torch.tensor([[0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0]])
    assert out.discriminator_labels.tolist() == replaced.tolist()
    gen, table = m.generator, m.discriminator.model.embeddings.tok_embeddings.weight
    proj = gen.model.embeddings.tok_embeddings.proj.weight  # by hand: input = E[id] P^T, logits = h (E P^T)^T + b
    hidden = gen.model(inputs_embeds=table[inputs] @ proj.T)[0]
    logits = gen.head(hidden) @ (table @ proj.T).T + gen.decoder.bias
    ref_gen = F.cross_entropy(logits[labels != -100], labels[labels != -100])
    corrupted = torch.tensor([[2, 10, 11, 20, 13, 3], [2, 15, 30, 17, 18, 3]])
    ref_disc = F.binary_cross_entropy_with_logits(m.discriminator(corrupted), replaced.float())
    assert out.generator_loss.item() == pytest.approx(ref_gen.item(), rel=1e-5)
    assert out.discriminator_loss.item() == pytest.approx(ref_disc.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(ref_gen.item() + 50 * ref_disc.item(), rel=1e-5)


def test_modernbert_saves_standard_models_and_resumes_exactly(tmp_path):
    from transformers import AutoModel, ModernBertForMaskedLM

    m = modern()
    with torch.no_grad():  # move every weight off its initial value, so any tensor left unloaded would show
        for p in m.parameters():
            p.add_(0.01 * torch.randn_like(p))
    m.save_pretrained(str(tmp_path / "ck"))
    fresh = modern()
    fresh.load_checkpoint(str(tmp_path / "ck"))
    a, b = m.state_dict(), fresh.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert fresh.generator.model.embeddings.tok_embeddings.shared is fresh.discriminator.model.embeddings.tok_embeddings
    # plain transformers: the encoder is a ModernBertModel, the generator a ModernBertForMaskedLM that computes
    # what the wrapper's generator computes
    enc = AutoModel.from_pretrained(str(tmp_path / "ck"))
    assert type(enc).__name__ == "ModernBertModel"
    a, b = enc.state_dict(), m.discriminator.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from transformers import AutoModelForSequenceClassification

    clf = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "ck"), num_labels=2)
    assert torch.equal(clf.head.dense.weight, m.discriminator.head.dense.weight)  # starts from the pretrained head
    gen = ModernBertForMaskedLM.from_pretrained(str(tmp_path / "ck" / "generator")).eval()
    m.eval()
    inputs, _ = masked_batch()
    with torch.no_grad():
        ours = m.generator.decoder(m.generator.head(m.generator.model(input_ids=inputs)[0]))
        torch.testing.assert_close(gen(input_ids=inputs).logits, ours, rtol=1e-5, atol=1e-5)


def test_modernbert_rejects_a_separate_embedding_size_and_a_deeper_generator():
    from nlp_ssl.errors import ConfigError

    with pytest.raises(ConfigError, match="embedding_size"):
        build_models(MODERN, ObjectiveConfig(task="electra", electra=ElectraObjectiveConfig(embedding_size=16)),
                     ModernTok())
    with pytest.raises(ConfigError, match="generator_layers: at most the discriminator's 2"):
        build_models(MODERN, ObjectiveConfig(task="electra", electra=ElectraObjectiveConfig(generator_layers=3)),
                     ModernTok())
    m = build_models(MODERN, ObjectiveConfig(task="electra", electra=ElectraObjectiveConfig(generator_layers=1)),
                     ModernTok())
    assert m.generator.config.num_hidden_layers == 1 and len(m.generator.model.layers) == 1
