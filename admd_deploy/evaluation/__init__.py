"""Paper-comparable evaluation of whole images: the DOTA / DIOR scorer (torch-free) and its protocol runner."""

from __future__ import annotations
