// Starts Swagger UI on this service's own API description (ledger_api/docs.py). A file, not an
// inline script, so the page's Content-Security-Policy can forbid inline scripts.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    displayOperationId: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
