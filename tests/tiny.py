"""A tiny Llama-architecture model + ChatML tokenizer, built from config in milliseconds."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Enough store-like text that policy prompts tokenize to a sensible length.
_CORPUS = [
    "You are the customer support assistant. Only state facts found in the policies or product "
    "information below. Never invent products, prices, stock, order details or promises.",
    "Returns: within 30 days of delivery, unused and unwashed, with the original tags attached; "
    "free prepaid return label; refunds to the original payment method within 5 business days.",
    "Sale items are final sale: no returns or exchanges. Free standard shipping on orders over $75.",
    "Shipping to Contiguous US: $6.95, 3-5 business days. Damaged or missing items: report within 7 days.",
    "Hi there! Thanks for reaching out. The jacket is in stock. Material: recycled nylon. Care: wash cold.",
    "Hello, I want to return my order. Where is my package? Can I exchange the boots for a bigger size?",
    "[ESCALATE] I've passed this to our team, who will reply within one business day.",
    "system user assistant Product information: price variants Fleece Pack Tent Boots Jacket",
]


def build_tiny_model(out: Path, seed: int = 0) -> Path:
    """Write a 2-layer, hidden-64 Llama and a byte-level BPE tokenizer into `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [
        "Hi! Returns are accepted within 30 days. Shipping costs $6.95.",
        "system user assistant",
    ]
    tok.train_from_iterator(corpus * 10, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    fast.chat_template = CHATML
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out
