"""Search stage: rank passages for a question and gather the evidence answering reads."""
