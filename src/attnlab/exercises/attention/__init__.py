"""Section 3.2 exercises: Bahdanau and Luong scores, the attention context, the softmax backward, decoding."""
