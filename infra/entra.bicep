// Sign-in for the report pages (REPORTS_AUTH=app-service), declared rather than clicked: an Entra ID
// app registration for App Service authentication, with no secret of any kind. The registration
// trusts the app's own user-assigned managed identity through a federated identity credential, and
// App Service authentication signs its client assertion with that identity
// (clientSecretSettingName = OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID, whose value, the identity's
// client id, app.bicep sets). See docs/SECURITY.md, "Report routes".
//
// Deployed by main.bicep only when reportsAuth is 'app-service', after app.bicep: the registration
// needs the site's host name for its redirect URI, and the site must exist for its authsettingsV2.
// Microsoft Graph resources deploy in the public cloud only, and need an Entra role of the deployer
// (Cloud Application Administrator or Application Administrator: see docs/DEPLOY.md).

extension microsoftGraphV1

@description('The deployment\'s resource token: the registration\'s unique name derives from it.')
param resourceToken string

@description('Name of the azd environment, shown in the registration\'s display name.')
param environmentName string

@description('Name of the function app (Microsoft.Web/sites) whose authentication this configures.')
param siteName string

@description('The site\'s default host name: the registration\'s redirect URI is https://<it>/.auth/login/aad/callback.')
param defaultHostName string

@description('Object (principal) id of the app\'s user-assigned managed identity: the federated credential\'s subject.')
param identityPrincipalId string

@description('Object id of the Entra group whose members may sign in (REPORT_READERS_GROUP); empty: anyone in the tenant.')
param readersGroup string = ''

// The tenant's v2.0 issuer: the federated credential trusts tokens the identity gets from it, and
// App Service authentication signs people in against it.
var entraIssuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'

// Assigned to the readers group: the default access role, for an application that declares no app
// roles (Microsoft Graph, appRoleAssignment.appRoleId).
var defaultAccessRole = '00000000-0000-0000-0000-000000000000'

resource registration 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: 'portal-insights-reports-${resourceToken}'
  displayName: 'Portal Insights reports (${environmentName})'
  signInAudience: 'AzureADMyOrg'
  web: {
    redirectUris: ['https://${defaultHostName}/.auth/login/aad/callback']
    // App Service authentication signs people in with OpenID Connect and asks for an ID token.
    implicitGrantSettings: { enableIdTokenIssuance: true }
  }

  // The credential: tokens the app's managed identity gets for api://AzureADTokenExchange stand in for
  // a client secret. Child resources of Graph applications are named '<parent uniqueName>/<name>'.
  resource trustsTheAppsIdentity 'federatedIdentityCredentials@v1.0' = {
    name: '${registration.uniqueName}/app-managed-identity'
    description: 'App Service authentication of ${siteName} proves this registration with the app\'s managed identity.'
    issuer: entraIssuer
    subject: identityPrincipalId
    audiences: ['api://AzureADTokenExchange']
  }
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: registration.appId
  // With a readers group, only its members (assigned below) can sign in: Entra refuses everyone else.
  appRoleAssignmentRequired: !empty(readersGroup)
}

resource readers 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!empty(readersGroup)) {
  appRoleId: defaultAccessRole
  principalId: readersGroup
  resourceId: servicePrincipal.id
}

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      // The app is the gate (dci/access.py): App Service signs people in, puts X-MS-CLIENT-PRINCIPAL
      // on the requests it authenticated and strips it from all others, and lets unauthenticated
      // requests through, so the portal's beacon and collect, health, the API description and the
      // function-key routes (the Dataverse webhook, export, erasure) answer as before, while a report
      // request without a sign-in is sent to /.auth/login/aad (HTML) or answered 401 (JSON) by the app.
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
      redirectToProvider: 'azureactivedirectory'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        isAutoProvisioned: false
        registration: {
          clientId: registration.appId
          openIdIssuer: entraIssuer
          // Not a secret's name: this value makes App Service authentication use the managed identity
          // named by the app setting of the same name as the registration's credential.
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        validation: {
          // ID tokens from the sign-in carry the registration's client id as their audience (App
          // Service also accepts it implicitly); no identifier URI is declared, so no other.
          allowedAudiences: [registration.appId]
        }
      }
    }
    login: {
      // The app reads X-MS-CLIENT-PRINCIPAL only, never the provider's tokens: nothing to store.
      tokenStore: {
        enabled: false
      }
    }
  }
}

output appId string = registration.appId
output servicePrincipalId string = servicePrincipal.id
