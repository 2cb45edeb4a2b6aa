"""Evaluation suites: ncp (retrieval + answers), rgb (noise robustness, negative rejection), summaries (ROUGE-L),
custom (any question set against any knowledge base). Each calls the product's services."""
