"""Inference backends: routing by model name and local fastembed models."""
