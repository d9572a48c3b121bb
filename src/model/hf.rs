//! Hugging Face `config.json` import (filled in by the presets work).
