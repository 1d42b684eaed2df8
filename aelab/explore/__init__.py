"""What the explore pages compute (no streamlit): latent-space views, reconstructions beside
PCA, the Lesson's data, and the decoder that runs in the browser."""
