"""Tiny models built from configs, saved the way users' models are saved.

Nothing here downloads anything: configurations are written in code, and the
tokenizers are built from small vocabularies made up here. Each builder returns
the folder (or file) that a magic's ``-m`` flag can load.
"""

import json
from pathlib import Path

WORDS = (
    "the a is was good bad great terrible love hate movie film food service "
    "happy sad awful wonderful not very i you it this that and or but hello hi "
    "how are what why overfitting model data train test sports politics "
    "technology game vote computer"
).split()


class Factory:
    """Writes tiny models into ``root`` (a pytest ``tmp_path``)."""

    def __init__(self, root):
        self.root = Path(root)

    def bert_classifier(
        self, labels=("negative", "positive"), name="tiny-bert", seed=0
    ):
        """A 2-layer BERT sequence classifier with a WordPiece tokenizer."""
        import torch
        from transformers import (
            BertConfig,
            BertForSequenceClassification,
            BertTokenizerFast,
        )

        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        vocab = [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "[MASK]",
            *WORDS,
            *"abcdefghijklmnopqrstuvwxyz",
        ]
        vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
        # transformers 5 builds the fast tokenizer from vocab= (vocab_file= is ignored)
        tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)})
        tokenizer.model_max_length = 64
        config = BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config).eval()
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return folder

    def gpt2(self, name="tiny-gpt2", seed=0, n_layer=2, n_embd=32):
        """A 2-layer GPT-2 with a byte-level BPE tokenizer trained on a few words."""
        import torch
        from tokenizers import ByteLevelBPETokenizer
        from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(
            [" ".join(WORDS)] * 4,
            vocab_size=300,
            min_frequency=1,
            special_tokens=["<|endoftext|>"],
        )
        bpe.save_model(str(folder))
        tokenizer = GPT2TokenizerFast(  # transformers 5 takes vocab= / merges=
            vocab=str(folder / "vocab.json"),
            merges=str(folder / "merges.txt"),
            bos_token="<|endoftext|>",
            eos_token="<|endoftext|>",
            unk_token="<|endoftext|>",
        )
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=128,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        torch.manual_seed(seed)
        GPT2LMHeadModel(config).eval().save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return folder

    def resnet(self, name="tiny-resnet.pt", arch="resnet18", num_classes=10, seed=0):
        """A torchvision ResNet built without weights, its state dict saved to a file.

        Saved with ``torch.save`` so that loading exercises ``weights_only=True``;
        the architecture and class count travel in the file name's sidecar
        ``.json``, as ipyllmapps writes them.
        """
        import torch
        import torchvision

        torch.manual_seed(seed)
        model = torchvision.models.get_model(
            arch, weights=None, num_classes=num_classes
        )
        path = self.root / name
        torch.save(model.state_dict(), path)
        meta = {
            "arch": arch,
            "num_classes": num_classes,
            "labels": [f"class{i}" for i in range(num_classes)],
        }
        path.with_suffix(".json").write_text(json.dumps(meta))
        return path

    def wav2vec2_ctc(self, name="tiny-wav2vec2", seed=0):
        """A tiny wav2vec2 CTC model with a character vocabulary and processor."""
        import torch
        from transformers import (
            Wav2Vec2Config,
            Wav2Vec2CTCTokenizer,
            Wav2Vec2FeatureExtractor,
            Wav2Vec2ForCTC,
            Wav2Vec2Processor,
        )

        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        chars = list("abcdefghijklmnopqrstuvwxyz'")
        vocab = {
            "<pad>": 0,
            "<unk>": 1,
            "|": 2,
            **{c: i + 3 for i, c in enumerate(chars)},
        }
        (folder / "vocab.json").write_text(json.dumps(vocab))
        tokenizer = Wav2Vec2CTCTokenizer(
            str(folder / "vocab.json"),
            unk_token="<unk>",
            pad_token="<pad>",
            word_delimiter_token="|",
        )
        extractor = Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        )
        processor = Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
        config = Wav2Vec2Config(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            conv_dim=(16, 16),
            conv_stride=(5, 4),
            conv_kernel=(10, 8),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            pad_token_id=0,
            ctc_loss_reduction="mean",
        )
        torch.manual_seed(seed)
        Wav2Vec2ForCTC(config).eval().save_pretrained(folder)
        processor.save_pretrained(folder)
        return folder

    def dcgan_generator(
        self,
        name="tiny-dcgan.safetensors",
        latent=16,
        width=8,
        size=28,
        channels=1,
        seed=0,
    ):
        """A random DCGAN generator saved as ``%gan_train --save`` saves one.

        One batch runs through it in training mode first, so its batch-norm
        running statistics are not the defaults and eval mode really differs
        from batch statistics.
        """
        import torch

        from ipyllmapps.models import gan

        config = {
            "latent": latent,
            "channels": channels,
            "size": size,
            "width": width,
            "data": "random",
            "name": name,
            "backend": "torch",
            "epochs": 0,
        }
        torch.manual_seed(seed)
        generator = gan.build_generator(config).train()
        with torch.no_grad():
            generator(torch.randn(64, latent) * 2 + 0.5)
        path = self.root / name
        gan.save(gan.GanBundle(model=generator.eval(), config=config), path)
        return path
