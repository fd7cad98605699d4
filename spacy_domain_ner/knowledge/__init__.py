"""The legal knowledge base and the `legal_knowledge` component: format, mining, matching, fusion, linking."""
