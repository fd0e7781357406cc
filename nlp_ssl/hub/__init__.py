"""Sharing models on the Hugging Face Hub, one module per job, each importing only those before it:

- `nlp_ssl.hub.inputs`: Hub ids as inputs (`local_path`, `looks_like_hub_id`, `HubError`);
- `nlp_ssl.hub.cards`: model cards, read from a run directory's own records (`build_model_card`,
  `write_model_card`, `artifact_of`);
- `nlp_ssl.hub.push`: upload (`push`, `share`, `push_if_asked`, `files_to_upload`) and `HubConfig`.

The names other modules use are re-exported here, except the function `push`: import it from `nlp_ssl.hub.push`
(a re-export would hide the module of the same name). Every module imports only the standard library and light
nlp_ssl modules at load time, so configs that hold a `HubConfig` load at once.
"""

from nlp_ssl.hub.cards import CARD_FILE, artifact_of, build_model_card, describe_hardware, run_name, write_model_card
from nlp_ssl.hub.inputs import REPO_ID, HubError, local_path, looks_like_hub_id
from nlp_ssl.hub.push import (LOG_FILES, MODEL_FILES, HubConfig, card_for_repo, check_model_dir, files_to_upload,
                              push_if_asked, share)

__all__ = ["CARD_FILE", "HubConfig", "HubError", "LOG_FILES", "MODEL_FILES", "REPO_ID", "artifact_of",
           "build_model_card", "card_for_repo", "check_model_dir", "describe_hardware", "files_to_upload",
           "local_path", "looks_like_hub_id", "push_if_asked", "run_name", "share", "write_model_card"]
