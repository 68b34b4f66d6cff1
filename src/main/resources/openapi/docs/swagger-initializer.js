// Points Swagger UI at this service's own document. It takes the place of the file of the same name
// in the Swagger UI jar (which loads a demo document from the internet), and keeps the page free of
// inline script.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true
  });
};
