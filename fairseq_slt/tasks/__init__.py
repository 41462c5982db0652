from .sign_translation import SignTranslationConfig, SignTranslationTask  # noqa: F401 (registers the task)
