"""Label semantics: hair colours one-of-N, one-hot expressions, the mask vector (Eq. 7), target sampling."""

import torch

from stargan_core.labels import label_space_for, permute_labels

ATTRS = ("Male", "Black_Hair", "Young", "Blond_Hair", "Brown_Hair")  # hair colours deliberately not first
EXPRESSIONS = ("angry", "happy", "neutral")


def test_hair_colour_one_of_n_any_position():
    space = label_space_for("CelebA", ATTRS, EXPRESSIONS)
    c_org = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]])  # male, black hair, not young
    targets = dict(space.single_domain_targets(0, c_org))
    assert targets["Blond_Hair"].tolist() == [[1.0, 0.0, 0.0, 1.0, 0.0]]
    assert targets["Brown_Hair"].tolist() == [[1.0, 0.0, 0.0, 0.0, 1.0]]
    assert targets["Black_Hair"].tolist() == [[1.0, 1.0, 0.0, 0.0, 0.0]]
    assert targets["Male"].tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0]]  # other attributes are flipped
    assert targets["Young"].tolist() == [[1.0, 1.0, 1.0, 0.0, 0.0]]


def test_categorical_targets_are_one_hot():
    space = label_space_for("RaFD", ATTRS, EXPRESSIONS)
    c_org = torch.tensor([[0.0, 1.0, 0.0]])
    targets = space.single_domain_targets(0, c_org)
    assert [name for name, _ in targets] == list(EXPRESSIONS)
    assert torch.equal(torch.stack([c[0] for _, c in targets]), torch.eye(3))


def test_unified_label_with_mask_vector():
    space = label_space_for("Both", ATTRS, EXPRESSIONS)
    assert space.dim == 5 + 3 + 2
    assert space.cls_dim == 8
    celeba = space.to_model_label(0, torch.tensor([[1.0, 0, 1, 0, 0]]))
    rafd = space.to_model_label(1, torch.tensor([[0.0, 0, 1]]))
    assert celeba.tolist() == [[1.0, 0, 1, 0, 0, 0, 0, 0, 1, 0]]
    assert rafd.tolist() == [[0.0, 0, 0, 0, 0, 0, 0, 1, 0, 1]]
    assert space.cls_slice(1) == slice(5, 8)


def test_joint_targets_cover_both_datasets():
    space = label_space_for("Both", ATTRS, EXPRESSIONS)
    c_org = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0]])
    targets = space.all_domain_targets(0, c_org)
    assert [name for name, _ in targets][-3:] == ["RaFD:angry", "RaFD:happy", "RaFD:neutral"]
    assert targets[-1][1].tolist() == [[0.0, 0, 0, 0, 0, 0, 0, 1, 0, 1]]
    assert len(targets) == 5 + 3


def test_targets_are_a_permutation_of_the_batch():
    c_org = torch.eye(6)
    c_trg = permute_labels(c_org, torch.Generator().manual_seed(3))
    assert sorted(map(tuple, c_trg.tolist())) == sorted(map(tuple, c_org.tolist()))
    assert not torch.equal(c_trg, c_org)


def test_label_space_round_trip():
    space = label_space_for("Both", ATTRS, EXPRESSIONS)
    assert type(space).from_dict(space.to_dict()) == space
